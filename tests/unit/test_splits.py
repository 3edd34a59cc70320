"""Leave-last-out and global time splits, and per-user seen items."""

from __future__ import annotations

import pandas as pd
import pytest

from tfrecs_llm.data.schema import SchemaError, validate_interactions
from tfrecs_llm.data.splits import global_time_split, history_items, leave_last_out


def _log() -> pd.DataFrame:
    # Rows out of time order; u1 ends on a tie at t=50 (rows 3 and 5); u3 has a single event.
    rows = [
        ("u1", "a", 10),
        ("u2", "b", 40),
        ("u1", "b", 20),
        ("u1", "c", 50),
        ("u2", "a", 30),
        ("u1", "a", 50),
        ("u3", "c", 60),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame.index = [100 + k for k in range(len(rows))]
    return validate_interactions(frame)


def test_leave_last_out_holds_out_each_users_last_event():
    log = _log()
    train, test = leave_last_out(log)
    assert test.index.tolist() == [101, 105]  # u2's t=40; u1's tie at t=50 -> the later row
    assert train.index.tolist() == [100, 102, 103, 104, 106]  # u3 (single event) stays in train
    assert list(train.columns) == list(log.columns)


def test_leave_last_out_on_an_empty_log():
    train, test = leave_last_out(_log().iloc[:0])
    assert len(train) == len(test) == 0


def test_global_time_split_with_an_explicit_cutoff():
    log = _log()
    train, test = global_time_split(log, cutoff=pd.Timestamp(40, unit="s"))  # naive -> UTC
    assert test.index.tolist() == [101, 103, 105, 106]  # timestamp >= cutoff
    assert train.index.tolist() == [100, 102, 104]
    _, test = global_time_split(log, cutoff="1970-01-01T01:00:50+01:00")  # t=50 in UTC
    assert test.index.tolist() == [103, 105, 106]
    _, test = global_time_split(log, cutoff=50)  # unix seconds, like the log's timestamps
    assert test.index.tolist() == [103, 105, 106]


def test_global_time_split_derives_the_cutoff_from_test_fraction():
    log = _log()
    _, test = global_time_split(log, test_fraction=0.1)  # ceil(0.7) = 1 event: the latest
    assert test.index.tolist() == [106]
    _, test = global_time_split(log, test_fraction=0.3)  # 3rd latest is t=50: the tie joins
    assert test.index.tolist() == [103, 105, 106]


def test_global_time_split_argument_errors():
    log = _log()
    for fraction in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="test_fraction must be strictly between 0 and 1"):
            global_time_split(log, test_fraction=fraction)
    with pytest.raises(ValueError, match="cutoff must be a timestamp"):
        global_time_split(log, cutoff="not a date")
    with pytest.raises(ValueError, match="empty interaction log"):
        global_time_split(log.iloc[:0])
    same_time = log.assign(timestamp=log["timestamp"].iloc[0])
    with pytest.raises(ValueError, match="every event would be in test"):
        global_time_split(same_time, test_fraction=0.5)


def test_history_items_in_time_order_without_repeats():
    assert history_items(_log()) == {"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["c"]}


def test_splits_need_validated_interactions():
    raw = pd.DataFrame({"user_id": ["u1"], "item_id": ["a"], "timestamp": [1]})
    for split in (leave_last_out, global_time_split, history_items):
        with pytest.raises(SchemaError, match="validate_interactions"):
            split(raw)
