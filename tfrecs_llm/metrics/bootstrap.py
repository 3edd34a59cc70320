"""Percentile bootstrap confidence intervals of per-query metric means.

A held-out evaluation averages a per-query value (hit, NDCG, reciprocal rank) over queries; the
interval says how much that mean would move on another draw of the same number of queries:

    resample n queries with replacement B times -> B means -> their (a/2, 1 - a/2) percentiles
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

# Bounds the [num_metrics, chunk, num_queries] gather of one batch of resamples (~32 MB float64).
_MAX_CELLS = 1 << 22


def bootstrap_intervals(
    per_query: Mapping[str, np.ndarray],
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """The ``confidence`` percentile-bootstrap interval of each metric's mean over queries.

    Args:
      per_query: metric name -> ``[num_queries]`` values (all the same length, >= 1).
      num_resamples: bootstrap resamples B (the same resampled query sets serve every metric, so
        intervals of related metrics are consistent).
      confidence: e.g. 0.95 for the 2.5th..97.5th percentiles.
      seed: the resamples are a pure function of the seed and the number of queries.

    Returns:
      metric name -> ``(low, high)``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    names = list(per_query)
    if not names:
        return {}
    values = np.stack([np.asarray(per_query[name], dtype=np.float64) for name in names])
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(
            f"per_query needs equally long, non-empty [num_queries] arrays, got shape {values.shape}"
        )
    num_queries = values.shape[1]
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // (num_queries * len(names)))
    means = []
    for start in range(0, num_resamples, chunk):
        size = min(chunk, num_resamples - start)
        picks = rng.integers(0, num_queries, size=(size, num_queries))
        means.append(values[:, picks].mean(axis=2))  # [num_metrics, size]
    means = np.concatenate(means, axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail], axis=1)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(names, low, high)}
