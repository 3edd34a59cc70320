"""Full-catalog ranking metrics for one held-out item per query.

With one relevant item per query, Recall@k is the hit rate, ``NDCG@k = 1 / log2(rank + 2)``
when the item's 0-based rank is below k (0 otherwise), and ``MRR = 1 / (rank + 1)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def exclude_items(scores: np.ndarray, excluded_rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Sets ``scores[q, r] = -inf`` for every row ``r`` in ``excluded_rows[q]``.

    ``scores: [num_queries, num_items]``; returns a copy.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    for query, rows in enumerate(excluded_rows):
        if len(rows):
            scores[query, np.asarray(rows, dtype=int)] = -np.inf
    return scores


def target_ranks(scores: np.ndarray, target_rows: np.ndarray) -> np.ndarray:
    """0-based rank of each query's target among all items: ``[num_queries]`` ints.

    ``scores: [num_queries, num_items]``, ``target_rows: [num_queries]``. Ties count against
    the target (an item tied with the target ranks above it), so constant scores earn nothing.
    """
    target_rows = np.asarray(target_rows, dtype=int)
    target_scores = scores[np.arange(len(target_rows)), target_rows][:, None]
    return (scores >= target_scores).sum(axis=1) - 1


def ranking_metrics(ranks: np.ndarray, ks: Sequence[int] = (10, 100)) -> dict[str, float]:
    """Recall@k and NDCG@k for each k, and MRR, averaged over queries."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise ValueError("no queries to evaluate")
    result: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        result[f"recall@{k}"] = float(hit.mean())
        result[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    result["mrr"] = float((1.0 / (ranks + 1.0)).mean())
    return result
