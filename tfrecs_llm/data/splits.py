"""Train/test splits of a validated interaction log, and per-user seen items for evaluation.

Both splits return ``(train, test)`` as row subsets of the input: original index, original row
order, all columns. Ties in time are broken by row order (a later row is a later event), the
same rule `UserTextBuilder` follows.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from tfrecs_llm.data.schema import require_validated_interactions


def leave_last_out(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's last event (by timestamp, then row order) goes to test, the rest to train.

    Users with a single event stay entirely in train, so every test user has some history.
    """
    require_validated_interactions(interactions)
    test = np.zeros(len(interactions), dtype=bool)
    if len(interactions):
        users, _ = pd.factorize(interactions["user_id"])
        times = interactions["timestamp"].to_numpy(dtype="datetime64[ns]")
        order = np.lexsort((times, users))  # stable: ties keep row order, so the later row is last
        sorted_users = users[order]
        last_of_user = np.r_[sorted_users[1:] != sorted_users[:-1], True]
        has_history = np.bincount(users)[sorted_users] > 1
        test[order[last_of_user & has_history]] = True
    return interactions[~test], interactions[test]


def global_time_split(
    interactions: pd.DataFrame,
    cutoff: str | float | pd.Timestamp | None = None,
    test_fraction: float = 0.1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events at or after ``cutoff`` go to test, earlier ones to train.

    Without a cutoff it is the timestamp of the ``ceil(n * test_fraction)``-th latest event, so
    about ``test_fraction`` of the events (more when timestamps tie) are in test. ``cutoff`` is a
    timestamp, a date string or unix seconds (as in the log); naive times are taken as UTC.
    """
    require_validated_interactions(interactions)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if cutoff is None:
        if len(interactions) == 0:
            raise ValueError("cannot derive a cutoff from an empty interaction log; pass cutoff")
        times = np.sort(interactions["timestamp"].to_numpy(dtype="datetime64[ns]"))
        n_test = math.ceil(len(times) * test_fraction)
        cutoff_time = pd.Timestamp(times[len(times) - n_test], tz="UTC")
        if cutoff_time <= pd.Timestamp(times[0], tz="UTC"):
            raise ValueError(
                f"every event would be in test: the cutoff for test_fraction={test_fraction} is "
                f"{cutoff_time}, the earliest timestamp; pass an explicit cutoff or a smaller "
                "test_fraction"
            )
    else:
        cutoff_time = _utc_timestamp(cutoff)
    test = (interactions["timestamp"] >= cutoff_time).to_numpy()
    return interactions[~test], interactions[test]


def history_items(interactions: pd.DataFrame) -> dict[str, list[str]]:
    """User id -> the distinct item ids they interacted with, in order of first interaction.

    Used to exclude already-seen items at evaluation. Ties in time keep row order.
    """
    require_validated_interactions(interactions)
    order = np.argsort(interactions["timestamp"].to_numpy(dtype="datetime64[ns]"), kind="stable")
    seen: dict[str, dict[str, None]] = {}
    users, items = interactions["user_id"].to_numpy(), interactions["item_id"].to_numpy()
    for user_id, item_id in zip(users[order].tolist(), items[order].tolist()):
        seen.setdefault(user_id, {})[item_id] = None  # a dict keeps first-seen order, no repeats
    return {user_id: list(item_ids) for user_id, item_ids in seen.items()}


def _utc_timestamp(value: str | float | pd.Timestamp) -> pd.Timestamp:
    try:
        is_seconds = isinstance(value, numbers.Real) and not isinstance(value, bool)
        timestamp = pd.Timestamp(value, unit="s") if is_seconds else pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"cutoff must be a timestamp such as '2024-01-31' or pd.Timestamp, got {value!r}"
        ) from error
    if pd.isna(timestamp):
        raise ValueError(f"cutoff must be a timestamp, got {value!r}")
    return timestamp.tz_localize("UTC") if timestamp.tzinfo is None else timestamp.tz_convert("UTC")
