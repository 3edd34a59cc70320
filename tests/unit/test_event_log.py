"""The SQLite feedback log: durable appends, verbatim (parameterised) values, ordering, cursors."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import pytest

from tests.unit.tiny_data import tiny_items
from tfrecs_llm.data.schema import validate_interactions
from tfrecs_llm.data.events import Event, events_to_interactions, parse_event
from tfrecs_llm.serving.event_log import EventLog

HOSTILE_ID = "x'); DROP TABLE events; -- \"quoted\" \\ ü"


def test_appended_events_survive_closing_and_reopening(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        ids = log.append([Event("u1", "space-1", "click", 10.0), Event("u1", "space-2", "like", 20.0)])
    assert ids == [1, 2]
    with contextlib.closing(sqlite3.connect(tmp_path / "events.sqlite")) as connection:  # WAL is in the file
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with EventLog(tmp_path / "events.sqlite") as log:
        assert log.count() == 2
        expected = [Event("u1", "space-1", "click", 10.0, 1), Event("u1", "space-2", "like", 20.0, 2)]
        assert log.user_events("u1") == expected


def test_hostile_ids_are_stored_verbatim_and_match_only_themselves(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        log.append([Event(HOSTILE_ID, HOSTILE_ID, "view", 1.0), Event("other", "space-1", "view", 2.0)])
        [event] = log.user_events(HOSTILE_ID)
        assert (event.user_id, event.item_id) == (HOSTILE_ID, HOSTILE_ID)
        assert log.user_events("x' OR '1'='1") == []
        assert log.count() == 2


def test_a_failing_batch_stores_nothing(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        with pytest.raises(sqlite3.IntegrityError):
            log.append([Event("u1", "space-1", "click", 1.0), Event("u1", "space-2", "share", 2.0)])
        assert log.count() == 0


def test_user_events_come_oldest_first_and_cursors_read_only_new_events(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        log.append([Event("u1", "b", "view", 20.0), Event("u1", "a", "view", 10.0), Event("u2", "c", "view", 5.0)])
        log.append([Event("u1", "c", "like", 20.0)])
        assert [e.item_id for e in log.user_events("u1")] == ["a", "b", "c"]  # same time: arrival order
        assert [e.event_id for e in log.events_since(2)] == [3, 4]
        assert [e.event_id for e in log.events_since(0, since_timestamp=20.0)] == [1, 4]
        assert [e.event_id for e in log.events_since(0, limit=2)] == [1, 2]


def test_concurrent_appends_from_many_threads_are_all_kept(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        def write(user: int) -> None:
            for i in range(25):
                log.append([Event(f"u{user}", "space-1", "view", float(i))])

        threads = [threading.Thread(target=write, args=(user,)) for user in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert log.count() == 100
        assert sorted(e.event_id for e in log.events_since(0)) == list(range(1, 101))


def test_parse_event_accepts_unix_and_iso_times_and_defaults_to_now() -> None:
    base = {"user_id": "u1", "item_id": "space-1", "type": "purchase"}
    assert parse_event({**base, "timestamp": 1_700_000_000}).timestamp == 1_700_000_000.0
    assert parse_event({**base, "timestamp": "1700000000"}).timestamp == 1_700_000_000.0
    assert parse_event({**base, "timestamp": "2023-11-14T22:13:20Z"}).timestamp == 1_700_000_000.0
    assert parse_event({**base, "timestamp": "2023-11-14T22:13:20"}).timestamp == 1_700_000_000.0  # naive = UTC
    assert parse_event(base, now=123.0) == Event("u1", "space-1", "purchase", 123.0)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"type": "share"}, "'type' must be one of"),
        ({"user_id": 7}, "'user_id' must be a non-empty string"),
        ({"item_id": "  "}, "'item_id' must be a non-empty string"),
        ({"user_id": "u" * 600}, "at most 512 allowed"),
        ({"timestamp": 1_700_000_000_000}, "out of range; expected unix seconds (not milliseconds)"),
        ({"timestamp": True}, "must be a number or a string"),
        ({"timestamp": "soon"}, "cannot be parsed"),
        ({"extra": 1}, "unknown field(s) ['extra']"),
    ],
)
def test_parse_event_names_what_is_wrong(change, message) -> None:
    with pytest.raises(ValueError) as error:
        parse_event({"user_id": "u1", "item_id": "space-1", "type": "click", **change})
    assert message in str(error.value)


def test_events_become_a_valid_interactions_table() -> None:
    events = [Event("u1", "space-1", "click", 1_700_000_000.0, 1), Event("u2", "music-2", "like", 1_700_000_060.0, 2)]
    table = validate_interactions(events_to_interactions(events), tiny_items())
    assert table["timestamp"].dt.year.tolist() == [2023, 2023]
    assert table[["user_id", "item_id", "type", "event_id"]].values.tolist() == [
        ["u1", "space-1", "click", 1], ["u2", "music-2", "like", 2]
    ]
