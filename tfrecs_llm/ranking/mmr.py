"""Maximal Marginal Relevance (MMR) re-ranking as a batched, graph-friendly TensorFlow function.

Greedy MMR (Carbonell & Goldstein, 1998) builds the list one item at a time, each step taking
the unchosen item ``i`` with the highest

    (1 - d) * rel_i - d * max_{j chosen} sim(i, j)

where ``sim`` is the dot product and the max over the empty set (first step) is 0. Both terms
must live on one scale: pass cosine-like relevance (dot products of unit vectors, which is what
our retrieval produces) together with unit-norm embeddings.

Ties in the objective go to the more relevant item, then to the lower index. So ``d = 0`` is
exactly ``tf.math.top_k(relevance, k)``, and ``d = 1`` (a constant objective at the first step)
starts from the most relevant item and then always adds the one least similar to those chosen.
"""

from __future__ import annotations

import numbers

import tensorflow as tf


def _check_diversity(diversity: tf.Tensor | float, relevance: tf.Tensor) -> tf.Tensor:
    """``diversity`` as a ``[1 or batch, 1]`` tensor, checked to lie in [0, 1]."""
    if isinstance(diversity, numbers.Real) and not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    diversity = tf.convert_to_tensor(diversity, dtype=relevance.dtype)
    size = tf.size(diversity)
    not_scalar_or_batch = "diversity must be a scalar or [batch]"
    checks = [
        tf.debugging.assert_rank_in(diversity, [0, 1], message=not_scalar_or_batch),
        tf.debugging.assert_equal(
            (size == 1) | (size == tf.shape(relevance)[0]), True, message=not_scalar_or_batch
        ),
        tf.debugging.assert_non_negative(diversity, message="diversity must be >= 0"),
        tf.debugging.assert_less_equal(
            diversity, tf.ones_like(diversity), message="diversity must be <= 1"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.reshape(diversity, [-1, 1])


def _check_shapes(relevance: tf.Tensor, embeddings: tf.Tensor, k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a Python int >= 1, got {k!r}")
    if relevance.shape.rank not in (None, 2):
        raise ValueError(f"relevance must be [batch, list_size], got shape {relevance.shape}")
    if embeddings.shape.rank not in (None, 3):
        raise ValueError(
            f"embeddings must be [batch, list_size, dim], got shape {embeddings.shape}"
        )
    list_size = relevance.shape[-1] if relevance.shape.rank else None
    if list_size is not None and k > list_size:
        raise ValueError(
            f"k must be <= list_size, got k={k} and relevance of shape {relevance.shape}"
        )


def mmr_rerank(
    relevance: tf.Tensor,
    embeddings: tf.Tensor,
    k: int,
    diversity: tf.Tensor | float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy MMR selection of ``k`` of ``list_size`` candidates per row.

    Args:
      relevance: [batch, list_size] float, higher is better, cosine-like. ``-inf`` (or NaN)
        excludes a candidate: it is only chosen once no other candidate is left, then in index
        order.
      embeddings: [batch, list_size, dim] unit-norm candidate embeddings (same dtype).
      k: static number of items to pick, ``1 <= k <= list_size``.
      diversity: ``d`` in [0, 1], a scalar or [batch]; 0 is pure relevance.

    Returns:
      indices: [batch, k] int32 positions into ``list_size``, in pick order.
      scores: [batch, k] the relevance of the picked candidates.
    """
    relevance = tf.convert_to_tensor(relevance)
    embeddings = tf.convert_to_tensor(embeddings, dtype=relevance.dtype)
    _check_shapes(relevance, embeddings, k)
    diversity = _check_diversity(diversity, relevance)
    list_size = tf.shape(relevance)[1]
    k_fits = tf.debugging.assert_less_equal(k, list_size, message="k must be <= list_size")
    with tf.control_dependencies([k_fits]):
        positions = tf.range(list_size)[tf.newaxis, :]

    eligible = relevance > float("-inf")
    # Excluded candidates rank below every eligible one (finite objectives), above chosen ones.
    excluded_score = tf.fill(tf.shape(relevance), relevance.dtype.min)
    # Finite stand-in for relevance: 0 * -inf would be NaN at d = 1.
    finite_relevance = tf.where(eligible, relevance, excluded_score)
    chosen = tf.zeros_like(eligible)
    max_similarity = tf.zeros_like(relevance)
    picks = []
    for _ in range(k):
        objective = (1.0 - diversity) * finite_relevance - diversity * max_similarity
        objective = tf.where(eligible, objective, excluded_score)
        objective = tf.where(chosen, float("-inf"), objective)
        is_best = tf.equal(objective, tf.reduce_max(objective, axis=1, keepdims=True))
        # Ties go to the more relevant item; top_k then prefers the lower index, unlike argmax.
        pick = tf.math.top_k(tf.where(is_best, finite_relevance, float("-inf")), k=1).indices[:, 0]
        picks.append(pick)

        chosen = tf.logical_or(chosen, tf.equal(positions, pick[:, tf.newaxis]))
        picked_embedding = tf.gather(embeddings, pick, batch_dims=1)
        similarity = tf.einsum("bld,bd->bl", embeddings, picked_embedding)
        max_similarity = similarity if len(picks) == 1 else tf.maximum(max_similarity, similarity)

    indices = tf.stack(picks, axis=1)
    return indices, tf.gather(relevance, indices, batch_dims=1)
