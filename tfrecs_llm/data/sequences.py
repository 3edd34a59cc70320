"""Users' interaction sequences: what the sequential query tower reads and trains on.

An event's history is the user's earlier events in sequence order (timestamp, then row order,
as ``leave_last_out`` orders them), so the target is never in its own history. Rows are
catalog rows + 1, 0 pads; windows are right-aligned (padding on the left), so the last column
is always the most recent item, in training and at serving alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrecs_llm.data.schema import require_validated_interactions


@dataclass
class Windows:
    """Training windows of every user's sequence, each ``[num_windows, length]``.

    ``inputs``: history rows (row + 1; 0 pads); ``targets``: the next item's row + 1 at each
    position (0 where there is none); ``text_index``: index of the target event's free text
    into ``texts``; ``weights``: 1 where a position trains, else 0.
    """

    inputs: np.ndarray
    targets: np.ndarray
    text_index: np.ndarray
    weights: np.ndarray
    texts: list[str]

    def features(self) -> dict[str, np.ndarray]:
        return {"history_rows": self.inputs, "target_rows": self.targets,
                "text_index": self.text_index, "weights": self.weights}


def ordered_sequences(
    events: pd.DataFrame, row_of: Mapping[str, int] | pd.Series
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """user -> (catalog rows, positions in ``events``) of the user's events in sequence order;
    events on items outside ``row_of`` are skipped. ``events`` must be validated."""
    require_validated_interactions(events)
    rows = pd.Series(row_of).reindex(events["item_id"].astype(str)).to_numpy()
    known = ~np.isnan(rows.astype(float))
    users, _ = pd.factorize(events["user_id"])
    times = events["timestamp"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((times, users))
    order = order[known[order]]
    names = events["user_id"].astype(str).to_numpy()[order]
    result = {}
    for user, index in pd.Series(np.arange(len(order))).groupby(names, sort=False).indices.items():
        positions = order[index]
        result[user] = (rows[positions].astype(np.int64), positions)
    return result


def training_windows(
    events: pd.DataFrame,
    row_of: Mapping[str, int] | pd.Series,
    length: int,
    trained: np.ndarray | None = None,
) -> Windows:
    """Consecutive windows of ``length`` next-item predictions over every user's sequence.

    ``trained``: ``[len(events)]`` bool, which events are targets to train on (default all);
    the others still serve as history. Free texts come from the ``user_text`` column.
    """
    free = events["user_text"].fillna("").astype(str).tolist() if "user_text" in events else [""] * len(events)
    texts = sorted(set(free) | {""})
    text_of = {text: index for index, text in enumerate(texts)}
    trained = np.ones(len(events), bool) if trained is None else np.asarray(trained, bool)
    inputs, targets, text_index, weights = [], [], [], []
    for rows, positions in ordered_sequences(events, row_of).values():
        ids = rows + 1
        for end in range(len(ids), 1, -length):
            start = max(0, end - length - 1)
            source, target = ids[start : end - 1], ids[start + 1 : end]
            target_positions = positions[start + 1 : end]
            use = trained[target_positions]
            if not use.any():
                continue
            pad = length - len(source)
            inputs.append(np.pad(source, (pad, 0)))
            targets.append(np.pad(target, (pad, 0)))
            text_index.append(np.pad([text_of[free[p]] for p in target_positions], (pad, 0)))
            weights.append(np.pad(use.astype(np.float32), (pad, 0)))
    empty = np.zeros((0, length), np.int32)
    return Windows(
        np.asarray(inputs, np.int32).reshape(-1, length) if inputs else empty,
        np.asarray(targets, np.int32).reshape(-1, length) if targets else empty,
        np.asarray(text_index, np.int32).reshape(-1, length) if text_index else empty,
        np.asarray(weights, np.float32).reshape(-1, length) if weights else empty.astype(np.float32),
        texts,
    )


def recent_items(events: pd.DataFrame, user_ids: Sequence[str], length: int) -> list[list[str]]:
    """Each user's ``length`` most recent item ids, oldest first ([] for users without events);
    ``events`` must be validated."""
    require_validated_interactions(events)
    wanted = {str(user) for user in user_ids}
    mine = events[events["user_id"].isin(wanted).to_numpy()]
    order = np.lexsort((mine["timestamp"].to_numpy(dtype="datetime64[ns]"),))
    lists = mine.iloc[order].groupby("user_id", sort=False)["item_id"].agg(list)
    return [list(map(str, lists.get(str(user), [])))[-length:] for user in user_ids]


def padded_rows(histories: Sequence[Sequence[str]], row_of: Mapping[str, int] | pd.Series, length: int) -> np.ndarray:
    """``[len(histories), length]`` int32: the last ``length`` known items of each history
    (oldest first) as row + 1, right-aligned, 0 pads; unknown ids are dropped."""
    lookup = dict(pd.Series(row_of).items()) if isinstance(row_of, pd.Series) else dict(row_of)
    out = np.zeros((len(histories), length), np.int32)
    for index, history in enumerate(histories):
        rows = [lookup[str(i)] + 1 for i in history if str(i) in lookup][-length:]
        if rows:
            out[index, -len(rows):] = rows
    return out
