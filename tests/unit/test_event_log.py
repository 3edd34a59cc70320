"""The feedback log, SQLite and PostgreSQL through one suite: durable appends, verbatim
(parameterised) values, ordering, cursors, idempotent retries, versioned schema migrations."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable

import pytest

from tests.unit.tiny_data import tiny_items
from tfrecs_llm.data.schema import validate_interactions
from tfrecs_llm.data.events import Event, events_to_interactions, parse_event
from tfrecs_llm.serving.event_log import SCHEMA_VERSION, EventLog
from tfrecs_llm.serving.event_logs import EventStore, open_event_log

HOSTILE_ID = "x'); DROP TABLE events; -- \"quoted\" \\ ü"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    """Where a new, empty event log lives, in each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite")
    return request.getfixturevalue("postgres_url")


def _integrity_error(location: str) -> type[Exception]:
    if location.startswith("postgresql://"):
        import psycopg

        return psycopg.IntegrityError
    return sqlite3.IntegrityError


def test_appended_events_survive_closing_and_reopening(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        ids = log.append([Event("u1", "space-1", "click", 10.0), Event("u1", "space-2", "like", 20.0)])
    assert ids == [1, 2]
    with contextlib.closing(open_event_log(location)) as log:
        assert log.count() == 2
        expected = [Event("u1", "space-1", "click", 10.0, 1), Event("u1", "space-2", "like", 20.0, 2)]
        assert log.user_events("u1") == expected
        assert log.schema_version == SCHEMA_VERSION


def test_sqlite_log_is_in_wal_mode(tmp_path) -> None:
    with EventLog(tmp_path / "events.sqlite") as log:
        log.append([Event("u1", "space-1", "click", 10.0)])
    with contextlib.closing(sqlite3.connect(tmp_path / "events.sqlite")) as connection:  # WAL is in the file
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_hostile_ids_are_stored_verbatim_and_match_only_themselves(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        log.append([Event(HOSTILE_ID, HOSTILE_ID, "view", 1.0), Event("other", "space-1", "view", 2.0)])
        [event] = log.user_events(HOSTILE_ID)
        assert (event.user_id, event.item_id) == (HOSTILE_ID, HOSTILE_ID)
        assert log.user_events("x' OR '1'='1") == []
        assert log.count() == 2


def test_a_failing_batch_stores_nothing(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        with pytest.raises(_integrity_error(location)):
            log.append([Event("u1", "space-1", "click", 1.0), Event("u1", "space-2", "share", 2.0)])
        assert log.count() == 0


def test_user_events_come_oldest_first_and_cursors_read_only_new_events(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        log.append([Event("u1", "b", "view", 20.0), Event("u1", "a", "view", 10.0), Event("u2", "c", "view", 5.0)])
        log.append([Event("u1", "c", "like", 20.0)])
        assert [e.item_id for e in log.user_events("u1")] == ["a", "b", "c"]  # same time: arrival order
        assert [e.item_id for e in log.user_events("u1", limit=2)] == ["b", "c"]  # the newest two
        assert [e.event_id for e in log.events_since(2)] == [3, 4]
        assert [e.event_id for e in log.events_since(0, since_timestamp=20.0)] == [1, 4]
        assert [e.event_id for e in log.events_since(0, limit=2)] == [1, 2]


def test_concurrent_appends_from_many_threads_are_all_kept_in_commit_order(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        seen_by_cursor: list[int] = []
        done = threading.Event()

        def write(user: int) -> None:
            for i in range(25):
                log.append([Event(f"u{user}", "space-1", "view", float(i))])

        def follow() -> None:  # what `update` does: read on from the largest id seen
            last = 0
            while True:
                finished = done.is_set()
                new = log.events_since(last)
                seen_by_cursor.extend(e.event_id for e in new)
                last = new[-1].event_id if new else last
                if finished:
                    return

        threads = [threading.Thread(target=write, args=(user,)) for user in range(4)]
        reader = threading.Thread(target=follow)
        reader.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        reader.join()
        assert log.count() == 100
        assert sorted(e.event_id for e in log.events_since(0)) == list(range(1, 101))
        assert seen_by_cursor == list(range(1, 101))  # a cursor never skips an event committed late


def test_retried_events_with_a_client_id_are_stored_once(location) -> None:
    with contextlib.closing(open_event_log(location)) as log:
        first = log.append([Event("u1", "space-1", "click", 1.0, client_event_id="req-1"),
                            Event("u1", "space-2", "click", 2.0)])
        again = log.append([Event("u1", "space-1", "click", 1.0, client_event_id="req-1"),
                            Event("u1", "space-3", "click", 3.0, client_event_id="req-2")])
        assert again[0] == first[0] and again[1] not in first
        assert log.count() == 3
        assert [e.client_event_id for e in log.events_since(0)] == ["req-1", None, "req-2"]

        def retry(_: int) -> None:  # the same request sent by eight clients at once
            log.append([Event("u2", "space-1", "view", 5.0, client_event_id="req-3")])

        threads = [threading.Thread(target=retry, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [e.client_event_id for e in log.user_events("u2")] == ["req-3"]


_V1_SCHEMA = """
CREATE TABLE events (event_id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('click', 'view', 'like', 'purchase', 'dislike')),
    timestamp REAL NOT NULL, received_at REAL NOT NULL);
CREATE INDEX events_by_user ON events (user_id, timestamp, event_id);
CREATE INDEX events_by_time ON events (timestamp, event_id);
INSERT INTO events (user_id, item_id, type, timestamp, received_at) VALUES ('u1', 'space-1', 'like', 10.0, 11.0);
"""


def test_a_log_written_before_schema_versions_is_migrated_and_keeps_its_events(tmp_path) -> None:
    path = tmp_path / "events.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(_V1_SCHEMA)
    with EventLog(path) as log:
        assert log.schema_version == SCHEMA_VERSION
        assert log.user_events("u1") == [Event("u1", "space-1", "like", 10.0, 1)]
        assert log.append([Event("u1", "space-2", "view", 12.0, client_event_id="k")] * 2) == [2, 2]


def test_a_log_from_a_newer_package_is_refused_untouched(tmp_path) -> None:
    path = tmp_path / "events.sqlite"
    with EventLog(path) as log:
        log.append([Event("u1", "space-1", "like", 10.0)])
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        connection.commit()
    with pytest.raises(ValueError, match=f"schema version {SCHEMA_VERSION + 1}; this tfrecs_llm knows up to"):
        EventLog(path)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_replicas_opening_one_new_postgres_database_together_migrate_it_once(postgres_url) -> None:
    logs: list[EventStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            logs.append(open_event_log(postgres_url))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(logs) == 4
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM tfrecs_llm_schema ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    for log in logs:
        log.close()


def test_unreachable_postgres_and_non_logs_get_clear_errors(tmp_path) -> None:
    with pytest.raises(ConnectionError, match=r"cannot connect to the event database postgresql://u:\*\*\*@127.0.0.1:9/db"):
        open_event_log("postgresql://u:secret@127.0.0.1:9/db", timeout=1)
    not_a_log = tmp_path / "notes.txt"
    not_a_log.write_text("hello, this is not SQLite\n" * 100)
    with pytest.raises(ValueError, match="notes.txt is not a feedback log"):
        open_event_log(not_a_log)
    with pytest.raises(FileNotFoundError, match="missing.sqlite does not exist"):
        open_event_log(tmp_path / "missing.sqlite", must_exist=True)


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
