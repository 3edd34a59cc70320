"""UserTextBuilder: composition, caps, and no leakage of the target (or later) items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrecs_llm.config import DataConfig
from tfrecs_llm.data.schema import SchemaError, validate_interactions, validate_items
from tfrecs_llm.data.user_text import UserTextBuilder

# One unique word per item, so "is item X's title in this text?" is a word test.
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
TITLES = {f"i{k}": word for k, word in enumerate(WORDS)}


def _builder(**kwargs) -> UserTextBuilder:
    return UserTextBuilder(TITLES, **kwargs)


def _log(rows: list[tuple], index: list | None = None) -> pd.DataFrame:
    """rows: (user_id, item_id, timestamp seconds[, user_text])."""
    columns = ["user_id", "item_id", "timestamp", "user_text"][: len(rows[0])]
    return validate_interactions(pd.DataFrame(rows, columns=columns, index=index))


# ---- build ------------------------------------------------------------------------------------


def test_build_puts_free_text_first_then_titles_newest_first():
    text = _builder().build("  space movies ", ["i0", "i1", "i2"])
    assert text == "space movies ; charlie ; bravo ; alpha"


def test_build_without_free_text_or_history():
    assert _builder().build("", ["i0", "i1"]) == "bravo ; alpha"
    assert _builder().build("just text") == "just text"
    assert _builder().build() == ""


def test_build_skips_unknown_items_and_keeps_repeats_once_at_most_recent():
    assert _builder().build("", ["i0", "gone", "i1", "i0"]) == "alpha ; bravo"


def test_build_caps_history_length():
    assert _builder(history_length=2).build("q", ["i0", "i1", "i2", "i3"]) == "q ; delta ; charlie"
    assert _builder(history_length=0).build("q", ["i0"]) == "q"


def test_build_cuts_to_max_words_keeping_whole_words_and_no_dangling_separator():
    builder = UserTextBuilder({"a": "one two three", "b": "four five"}, max_words=5)
    # Full text: "hello ; four five ; one two three" (8 words, ";" counts).
    assert builder.build("hello", ["a", "b"]) == "hello ; four five"
    assert UserTextBuilder({}, max_words=2).build("many  words  here") == "many  words"


def test_custom_separator_and_from_config():
    items = pd.DataFrame({"item_id": [1, 2], "title": ["Dune", "Emma"], "description": ""})
    config = DataConfig(history_length=1, max_user_text_words=3, title_separator=" | ")
    builder = UserTextBuilder.from_config(validate_items(items), config)
    assert builder.build("", ["1", "2"]) == "Emma"
    assert builder.build("read", ["1", "2"]) == "read | Emma"
    assert builder.build("a b c d", ["1"]) == "a b c"


def test_invalid_arguments():
    with pytest.raises(ValueError, match="history_length must be >= 0"):
        UserTextBuilder(TITLES, history_length=-1)
    with pytest.raises(ValueError, match="max_words must be >= 1"):
        UserTextBuilder(TITLES, max_words=0)


# ---- for_events: no leakage -------------------------------------------------------------------


def _leakage_log() -> pd.DataFrame:
    # Rows deliberately out of time order; u1 has two ties (t=200 and t=400); no repeated items.
    rows = [
        ("u1", "i3", 300),
        ("u1", "i1", 200),
        ("u2", "i6", 100),
        ("u1", "i0", 100),
        ("u1", "i2", 200),
        ("u2", "i7", 100),
        ("u1", "i4", 400),
        ("u1", "i5", 400),
        ("u2", "i8", 500),
    ]
    return _log(rows, index=[f"e{k}" for k in range(len(rows))])


def test_no_event_text_contains_its_own_same_time_or_later_items():
    log = _leakage_log()
    texts = _builder().for_events(log)
    assert texts.index.equals(log.index)
    for label, event in log.iterrows():
        words = set(texts[label].split())
        user_events = log[log["user_id"] == event["user_id"]]
        forbidden = user_events.loc[user_events["timestamp"] >= event["timestamp"], "item_id"]
        assert TITLES[event["item_id"]] not in words
        assert not words & {TITLES[item] for item in forbidden}, (label, texts[label])
        others = log.loc[log["user_id"] != event["user_id"], "item_id"]
        assert not words & {TITLES[item] for item in others}


def test_event_texts_are_strictly_earlier_history_newest_first():
    texts = _builder().for_events(_leakage_log())
    assert texts["e3"] == ""  # u1's first event
    assert texts["e1"] == texts["e4"] == "alpha"  # the t=200 tie sees only t=100
    assert texts["e0"] == "charlie ; bravo ; alpha"  # ties at t=200 in row order: i1, then i2
    assert texts["e6"] == texts["e7"] == "delta ; charlie ; bravo ; alpha"
    assert texts["e2"] == texts["e5"] == ""  # u2's tie at t=100
    assert texts["e8"] == "hotel ; golf"


def test_event_texts_are_capped_by_history_length_and_max_words():
    log = _leakage_log()
    assert _builder(history_length=2).for_events(log)["e6"] == "delta ; charlie"
    assert _builder(max_words=3).for_events(log)["e6"] == "delta ; charlie"


def test_event_texts_start_with_the_events_own_user_text():
    log = _log([("u1", "i0", 1, "first query"), ("u1", "i1", 2, None), ("u1", "i2", 3, " jazz ")])
    assert _builder().for_events(log).tolist() == ["first query", "alpha", "jazz ; bravo ; alpha"]


def test_for_events_matches_build_on_random_logs_with_ties_and_repeats():
    rng = np.random.default_rng(0)
    n = 300
    rows = list(
        zip(
            rng.choice(["u1", "u2", "u3"], n),
            rng.choice(list(TITLES) + ["removed"], n),
            rng.integers(0, 40, n),
        )
    )
    log = _log(rows)
    builder = _builder(history_length=3, max_words=6)
    texts = builder.for_events(log)
    for pos, (user, _, time) in enumerate(rows):
        in_time_order = sorted(rows, key=lambda row: row[2])  # stable: ties keep row order
        earlier = [item for u, item, t in in_time_order if u == user and t < time]
        assert texts.iloc[pos] == builder.build("", earlier), pos


def test_for_events_needs_validated_interactions():
    raw = pd.DataFrame({"user_id": ["u1"], "item_id": ["i0"], "timestamp": [1]})
    with pytest.raises(SchemaError, match="validate_interactions"):
        _builder().for_events(raw)


def test_for_events_on_an_empty_log():
    empty = _log([("u1", "i0", 1)]).iloc[:0]
    assert _builder().for_events(empty).tolist() == []


# ---- for_users --------------------------------------------------------------------------------


def test_for_users_uses_all_events_as_of_now():
    log = _leakage_log()
    texts = _builder().for_users(log, ["u1", "u2", "nobody"], ["rock", None, "hello"])
    assert texts == [
        "rock ; foxtrot ; echo ; delta ; charlie ; bravo ; alpha",  # tie at t=400: i4 then i5
        "india ; hotel ; golf",
        "hello",
    ]
    assert _builder().for_users(log, ["nobody"]) == [""]


def test_for_users_checks_free_texts_length():
    with pytest.raises(ValueError, match="free_texts has 1 entries but user_ids has 2"):
        _builder().for_users(_leakage_log(), ["u1", "u2"], ["x"])
