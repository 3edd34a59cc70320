"""Top-k with per-query excluded ids (items a user already has), for any TFRS top-k layer.

Exclusion is a sorted lookup, not an all-pairs compare: each query's ``n`` excluded ids are
sorted by a 64-bit fingerprint once, and each of its ``k + n`` retrieved ids is looked up by
binary search and then compared as a string, so time is ``O((k + n) log n)`` and memory
``O(k + n)`` per query (an all-pairs compare needs ``(k + n) * n``: gigabytes for one request
excluding 350k ids).
"""

from __future__ import annotations

import tensorflow as tf

_FINGERPRINT_BUCKETS = 2**62


def excluded_mask(ids: tf.Tensor, exclude_ids: tf.Tensor) -> tf.Tensor:
    """``[batch, m]`` bool: whether ``ids[b, j]`` is one of ``exclude_ids[b, :]``.

    ``ids: [batch, m]``, ``exclude_ids: [batch, n]`` strings (``""`` pads match no catalog id).
    """
    # One more "" column: every row has something to search, even with no exclusions.
    exclude_ids = tf.concat([exclude_ids, tf.fill([tf.shape(exclude_ids)[0], 1], "")], axis=1)
    keys = tf.strings.to_hash_bucket_fast(exclude_ids, _FINGERPRINT_BUCKETS)
    order = tf.argsort(keys, axis=1, stable=True)
    sorted_keys = tf.gather(keys, order, batch_dims=1)
    sorted_ids = tf.gather(exclude_ids, order, batch_dims=1)
    probes = tf.strings.to_hash_bucket_fast(ids, _FINGERPRINT_BUCKETS)
    positions = tf.searchsorted(sorted_keys, probes, side="left")
    width = tf.shape(exclude_ids)[1]
    candidates = tf.gather(sorted_ids, tf.minimum(positions, width - 1), batch_dims=1)
    # The string compare makes it exact: the first excluded id with the probe's fingerprint is
    # compared (two different ids sharing one fingerprint, ~1 in 4e18 per pair, could hide the
    # second of them).
    return (positions < width) & tf.equal(candidates, ids) & tf.not_equal(ids, "")


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
    excluded = excluded_mask(ids, exclude_ids)
    scores = tf.where(excluded, tf.constant(-float("inf"), scores.dtype), scores)
    # An approximate index may return fewer than requested (few leaves searched in tiny catalogs).
    top_scores, positions = tf.math.top_k(scores, k=tf.minimum(k, tf.shape(scores)[1]))
    return top_scores, tf.gather(ids, positions, batch_dims=1)
