"""Candidate lists for the ranker: retrieval top-K per query, labels, each event's history."""

from __future__ import annotations

import numpy as np
import pandas as pd


def retrieve_candidates(
    query_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    excluded_rows: list[np.ndarray],
    num_candidates: int,
    positive_rows: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Exact top-``num_candidates`` (at most the catalog size) per query, excluding each query's
    ``excluded_rows``.

    Returns ``candidate_rows [n, K]`` int32, ``retrieval_score [n, K]`` float32 and ``labels
    [n, K]`` float32: 1 where the candidate is the query's positive (all zeros without
    ``positive_rows`` or when retrieval missed it). Positives are never injected into lists:
    an injected positive carries a tell-tale low retrieval score, which a ranker would learn.
    """
    num_candidates = min(num_candidates, len(item_embeddings))
    scores = query_embeddings @ item_embeddings.T
    for query, rows in enumerate(excluded_rows):
        scores[query, rows] = -np.inf
    top = np.argpartition(-scores, num_candidates - 1, axis=1)[:, :num_candidates]
    retrieval = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-retrieval, axis=1, kind="stable")
    rows = np.take_along_axis(top, order, axis=1)
    labels = np.zeros(rows.shape, np.float32)
    if positive_rows is not None:
        labels = (rows == np.asarray(positive_rows)[:, None]).astype(np.float32)
    return {
        "candidate_rows": rows.astype(np.int32),
        "retrieval_score": np.take_along_axis(retrieval, order, axis=1).astype(np.float32),
        "labels": labels,
    }


def keep_lists_with_positives(lists: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops lists whose positive was not retrieved (they teach a ranker nothing)."""
    keep = lists["labels"].any(axis=1)
    return {name: values[keep] for name, values in lists.items()}


def rows_before_each_event(events: pd.DataFrame, row_of: pd.Series) -> list[np.ndarray]:
    """For every event, the catalog rows of the same user's events strictly earlier in time."""
    result: list[np.ndarray] = [np.zeros(0, int)] * len(events)
    positions = pd.Series(np.arange(len(events)), index=events.index)
    for _, group in events.groupby("user_id", sort=False):
        group = group.sort_values("timestamp", kind="stable")
        rows = row_of.reindex(group["item_id"].astype(str)).to_numpy(int)
        times = group["timestamp"].to_numpy()
        for i, index in enumerate(group.index):
            earlier = np.searchsorted(times, times[i], side="left")
            result[positions[index]] = rows[:earlier]
    return result
