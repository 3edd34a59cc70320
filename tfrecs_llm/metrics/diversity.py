"""Beyond-accuracy metrics of recommendation lists: diversity, coverage, novelty.

``recs: [num_users, k]`` holds item row indices (row ``r`` of ``item_embeddings``,
``item_categories`` or ``item_popularity``), best first; every metric is a float.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _check_recs(recs: np.ndarray, num_items: int) -> np.ndarray:
    recs = np.asarray(recs)
    if recs.ndim != 2 or recs.shape[0] == 0 or recs.shape[1] == 0:
        raise ValueError(f"recs must be a non-empty [num_users, k] array, got shape {recs.shape}")
    if not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must hold integer item rows, got dtype {recs.dtype}")
    outside = np.argwhere((recs < 0) | (recs >= num_items))
    if len(outside):
        user, position = outside[0]
        raise ValueError(
            f"recs[{user}, {position}] = {recs[user, position]} is not an item row in "
            f"[0, {num_items})"
        )
    return recs


def _category_counts(recs: np.ndarray, item_categories: Sequence) -> tuple[np.ndarray, int]:
    """Per-list category counts ``[num_users, num_categories]`` and the catalog's count."""
    _, codes = np.unique(np.asarray(item_categories), return_inverse=True)
    codes = codes.reshape(-1)
    recs = _check_recs(recs, len(codes))
    num_categories = int(codes.max()) + 1
    counts = np.zeros((recs.shape[0], num_categories))
    np.add.at(counts, (np.arange(recs.shape[0])[:, None], codes[recs]), 1.0)
    return counts, num_categories


def intra_list_diversity(recs: np.ndarray, item_embeddings: np.ndarray) -> float:
    """Mean over lists of the mean pairwise cosine distance among a list's items.

        ILD(u) = 2 / (k (k - 1)) * sum_{a < b} (1 - cos(e_a, e_b))

    Args:
      recs: [num_users, k] item rows, k >= 2.
      item_embeddings: [num_items, dim]; an all-zero row has distance 1 to everything.
    """
    embeddings = np.asarray(item_embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError(f"item_embeddings must be [num_items, dim], got {embeddings.shape}")
    recs = _check_recs(recs, len(embeddings))
    k = recs.shape[1]
    if k < 2:
        raise ValueError(f"recs needs k >= 2 items per list for pairwise distances, got k={k}")
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    lists = unit[recs]
    similarity = np.einsum("ukd,ujd->ukj", lists, lists)
    off_diagonal = similarity.sum(axis=(1, 2)) - np.trace(similarity, axis1=1, axis2=2)
    return float((1.0 - off_diagonal / (k * (k - 1))).mean())


def category_entropy_at_k(recs: np.ndarray, item_categories: Sequence) -> float:
    """Mean over lists of the Shannon entropy (nats) of the categories in the top k.

        H(u) = -sum_c q_c log q_c,   q_c = (# items of category c in u's list) / k

    Args:
      recs: [num_users, k] item rows.
      item_categories: [num_items] category label per item (any comparable type).
    """
    counts, _ = _category_counts(recs, item_categories)
    shares = counts / counts.sum(axis=1, keepdims=True)
    logs = np.log(np.where(shares > 0, shares, 1.0))
    return float(-(shares * logs).sum(axis=1).mean())


def category_coverage_at_k(recs: np.ndarray, item_categories: Sequence) -> float:
    """Mean over lists of the share of the catalog's categories present in the top k.

        coverage(u) = |{category(i) : i in u's list}| / |{category(i) : i in catalog}|

    Args:
      recs: [num_users, k] item rows.
      item_categories: [num_items] category label per item.
    """
    counts, num_categories = _category_counts(recs, item_categories)
    return float(((counts > 0).sum(axis=1) / num_categories).mean())


def catalog_coverage(recs: np.ndarray, num_items: int) -> float:
    """Share of the catalog recommended to at least one user: ``|unique(recs)| / num_items``.

    Args:
      recs: [num_users, k] item rows.
      num_items: catalog size.
    """
    recs = _check_recs(recs, num_items)
    return len(np.unique(recs)) / num_items


def novelty(recs: np.ndarray, item_popularity: np.ndarray) -> float:
    """Mean self-information (bits) of the recommended items.

        novelty = mean over recs of -log2 p(i),   p(i) = (n_i + 1) / (sum_j n_j + num_items)

    ``n_i`` is item ``i``'s interaction count; add-one smoothing keeps never-seen items finite
    (they are the most novel).

    Args:
      recs: [num_users, k] item rows.
      item_popularity: [num_items] interaction counts, >= 0.
    """
    counts = np.asarray(item_popularity, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("item_popularity must be [num_items] non-negative interaction counts")
    recs = _check_recs(recs, len(counts))
    probabilities = (counts + 1.0) / (counts.sum() + len(counts))
    return float(-np.log2(probabilities[recs]).mean())
