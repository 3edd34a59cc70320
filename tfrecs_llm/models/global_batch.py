"""In-batch negatives over the global batch under a multi-replica ``tf.distribute`` strategy."""

from __future__ import annotations

import tensorflow as tf


def global_candidates(
    item_embeddings: tf.Tensor,
    item_ids: tf.Tensor,
    sampling_probability: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """In-batch candidates of the whole global batch, this replica's own first.

    ``item_embeddings: [local_batch, dim]``, ``item_ids: [local_batch]`` (strings),
    ``sampling_probability: [local_batch]`` -> ``[global_batch, dim]``, ``[global_batch]``
    (int64 fingerprints of the ids, enough to detect accidental hits; collectives carry no
    strings) and ``[global_batch]``. Row ``i < local_batch`` is still query ``i``'s positive,
    which is what ``tfrs.tasks.Retrieval`` assumes; the other rows become extra negatives.
    With one replica the inputs come back unchanged.

    Gradients flow back through the gather, so the sum of the replicas' losses and gradients
    equals the single-process loss and gradient over the global batch. Replicas may hold
    batches of different sizes (the last batch of an epoch).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return item_embeddings, item_ids, sampling_probability
    local_size = tf.shape(item_embeddings)[:1]
    sizes = context.all_gather(local_size, axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    fingerprints = tf.strings.to_hash_bucket_fast(tf.reshape(item_ids, [-1]), 2**62)
    data = [fingerprints] if sampling_probability is None else [fingerprints, sampling_probability]
    # tf.identity places input tensors on this replica's device: collectives need one, and a
    # tensor straight from the distributed dataset may have none. Ids and probabilities are
    # data (no gradient); the embeddings are gathered on their own so that only their gather
    # is differentiated.
    data = [tf.identity(column) for column in data]
    gathered_data = context.all_gather(data, axis=0)
    gathered_embeddings = context.all_gather(item_embeddings, axis=0)

    def own_first(values: tf.Tensor) -> tf.Tensor:
        return tf.roll(values, -offset, axis=0)

    probability = own_first(gathered_data[1]) if sampling_probability is not None else None
    return own_first(gathered_embeddings), own_first(gathered_data[0]), probability
