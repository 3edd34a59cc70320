"""Entropy-diversity loss over ranked lists, and the topic assignments it needs.

Each list entry ``i`` carries a topic distribution ``c_i`` over ``T`` topics: a category one-hot
(:func:`category_one_hot`) or, when items have no category, a soft assignment to ``T`` centroids
of the item embeddings (:func:`fit_topic_centroids` then :func:`soft_topic_assignments`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


def entropy_diversity_loss(
    scores: tf.Tensor,
    topic_distributions: tf.Tensor,
    tau: float = 1.0,
    mask: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """Negative entropy of the topic mix that the ranking puts its probability mass on.

    ``p = softmax(scores / tau)`` over each list (masked entries get ``p_i = 0``),
    ``m = sum_i p_i c_i`` is the expected topic distribution of the ranked mass, and

        L_div = -H(m) = sum_t m_t log m_t        (0 log 0 = 0)

    ranges from ``-log T`` (mass spread evenly over all ``T`` topics) to 0 (one topic).
    Minimising it moves probability towards under-represented topics; gradients flow to
    ``scores``. A fully masked list has ``m = 0`` and loss 0.

    Args:
      scores: [batch_size, list_size] ranking scores.
      topic_distributions: [batch_size, list_size, num_topics], each row a distribution.
      tau: softmax temperature, > 0; lower values concentrate ``p`` on the top of the list.
      mask: optional [batch_size, list_size] bool, False for padded entries.

    Returns:
      [batch_size] loss per list (the caller averages).
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    scores = tf.convert_to_tensor(scores)
    if not scores.dtype.is_floating:
        scores = tf.cast(scores, tf.float32)
    topics = tf.cast(topic_distributions, scores.dtype)
    if scores.shape.rank not in (None, 2) or topics.shape.rank not in (None, 3):
        raise ValueError(
            "scores must be [batch_size, list_size] and topic_distributions "
            f"[batch_size, list_size, num_topics], got {scores.shape} and {topics.shape}"
        )
    if not scores.shape.is_compatible_with(topics.shape[:2]):
        raise ValueError(
            f"topic_distributions {topics.shape} does not match scores {scores.shape} "
            "in [batch_size, list_size]"
        )
    logits = scores / tau
    if mask is not None:
        mask = tf.cast(mask, tf.bool)
        logits = tf.where(mask, logits, logits.dtype.min)
    probabilities = tf.nn.softmax(logits, axis=-1)
    if mask is not None:
        # Zeroes an all-masked list (whose softmax is uniform over padding).
        probabilities *= tf.cast(mask, probabilities.dtype)
    topic_mass = tf.einsum("bl,blt->bt", probabilities, topics)
    # xlogy(0, 0) = 0 and its gradient at 0 is 0, so empty topics are safe.
    return tf.reduce_sum(tf.math.xlogy(topic_mass, topic_mass), axis=-1)


def category_one_hot(categories: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """One-hot topic distributions from item categories.

    Args:
      categories: [num_items] category names.

    Returns:
      ``(one_hot [num_items, num_categories] float32, names)`` with ``names`` sorted, so column
      ``j`` is ``names[j]``.
    """
    values = list(categories)
    missing = [row for row, value in enumerate(values) if not isinstance(value, str) or not value]
    if missing:
        raise ValueError(
            f"categories must be non-empty strings; rows {missing[:5]} are "
            f"{[values[row] for row in missing[:5]]!r}"
        )
    names = sorted(set(values))
    codes = np.searchsorted(names, values)
    return np.eye(len(names), dtype=np.float32)[codes], names


def _unit_rows(matrix: np.ndarray, argument: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{argument} must be 2-D [rows, dim], got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def soft_topic_assignments(
    item_embeddings: np.ndarray, centroids: np.ndarray, temperature: float = 0.1
) -> np.ndarray:
    """Soft topic distributions: softmax of cosine similarity to each centroid.

    ``c_i = softmax_j(cos(e_i, mu_j) / temperature)``.

    Args:
      item_embeddings: [num_items, dim].
      centroids: [num_topics, dim], e.g. from :func:`fit_topic_centroids`.
      temperature: > 0; lower values approach a hard (one-hot) assignment.

    Returns:
      [num_items, num_topics] float32, rows summing to 1.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    items = _unit_rows(item_embeddings, "item_embeddings")
    centres = _unit_rows(centroids, "centroids")
    if items.shape[1] != centres.shape[1]:
        raise ValueError(
            f"item_embeddings dim {items.shape[1]} != centroids dim {centres.shape[1]}"
        )
    logits = items @ centres.T / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_topic_centroids(
    item_embeddings: np.ndarray, k: int, seed: int = 0, iterations: int = 25
) -> np.ndarray:
    """Spherical k-means: ``k`` unit centroids maximising the summed cosine similarity.

    Deterministic for a given ``seed``: the first centroid is a seeded random item, each further
    one the item least similar to those already chosen (farthest-first), then at most
    ``iterations`` rounds of assigning each item to its most similar centroid and setting each
    centroid to the normalised sum of its items. A cluster left empty is re-seeded with the item
    least similar to its own centroid (distinct items for several).

    Args:
      item_embeddings: [num_items, dim].
      k: number of topics, 1 <= k <= num_items.

    Returns:
      [k, dim] float32 unit centroids.
    """
    items = _unit_rows(item_embeddings, "item_embeddings")
    if not 1 <= k <= len(items):
        raise ValueError(f"k must be in [1, num_items={len(items)}], got {k}")
    chosen = [int(np.random.default_rng(seed).integers(len(items)))]
    for _ in range(1, k):
        closest = (items @ items[chosen].T).max(axis=1)
        closest[chosen] = np.inf
        chosen.append(int(np.argmin(closest)))
    centroids = items[chosen]
    assignment = None
    for _ in range(iterations):
        similarity = items @ centroids.T
        new_assignment = similarity.argmax(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, items)
        empty = np.flatnonzero(np.bincount(assignment, minlength=k) == 0)
        least_similar = np.argsort(similarity[np.arange(len(items)), assignment], kind="stable")
        sums[empty] = items[least_similar[: len(empty)]]
        centroids = _unit_rows(sums, "centroids")
    return centroids.astype(np.float32)
