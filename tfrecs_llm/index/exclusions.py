"""Top-k with per-query excluded ids (items a user already has), for any TFRS top-k layer."""

from __future__ import annotations

import tensorflow as tf


def top_k_excluding(
    index: tf.keras.layers.Layer,
    query_embeddings: tf.Tensor,
    exclude_ids: tf.Tensor,
    k: int,
    num_items: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Retrieves ``k + n`` candidates and drops excluded ids, so ``k`` survive when possible.

    ``query_embeddings: [batch, dim]``, ``exclude_ids: [batch, n]`` strings (pad with ``""``;
    ``n`` may vary per call, unlike TFRS's ``query_with_exclusions``), ``num_items``: catalog
    size. Returns ``(scores, ids)``, each ``[batch, k]`` (fewer columns if an approximate index
    found fewer); when fewer than ``k`` non-excluded items exist, the tail holds excluded ones
    with score ``-inf``.
    """
    num_retrieved = tf.minimum(k + tf.shape(exclude_ids)[1], num_items)
    scores, ids = index(query_embeddings, k=num_retrieved)
    excluded = tf.reduce_any(ids[:, :, tf.newaxis] == exclude_ids[:, tf.newaxis, :], axis=-1)
    scores = tf.where(excluded, tf.constant(-float("inf"), scores.dtype), scores)
    # An approximate index may return fewer than requested (few leaves searched in tiny catalogs).
    top_scores, positions = tf.math.top_k(scores, k=tf.minimum(k, tf.shape(scores)[1]))
    return top_scores, tf.gather(ids, positions, batch_dims=1)
