"""Relevance losses over candidate lists, and their combination with the diversity loss.

All losses take ``y_true: [batch_size, list_size]`` relevance labels (1 for the positive and 0
otherwise, or graded ratings) and ``y_pred: [batch_size, list_size]`` scores (logits), compute one
value per list and average over lists (Keras ``SUM_OVER_BATCH_SIZE``); ``sample_weight`` is
``[batch_size]``. They plug into ``tfrs.tasks.Ranking(loss=...)``. Lists are assumed full (as
top-k retrieval produces them); the diversity loss takes a mask for padded lists.

TFRS 0.7.7 ships no list-wise or pair-wise loss and ``tensorflow_ranking`` is not a dependency,
so the two list losses are small ``tf.keras.losses.Loss`` subclasses here.
"""

from __future__ import annotations

import tensorflow as tf

from tfrecs_llm.config import RELEVANCE_LOSSES


class ListwiseSoftmaxLoss(tf.keras.losses.Loss):
    """Softmax cross-entropy between normalised labels and the softmax of the scores.

        L = -sum_i (y_i / sum_j y_j) log softmax(s)_i

    Graded labels become a target distribution; a list without relevant items has loss 0.
    """

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """``y_true, y_pred: [batch_size, list_size]`` -> ``[batch_size]``."""
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.cast(y_true, y_pred.dtype)
        targets = tf.math.divide_no_nan(y_true, tf.reduce_sum(y_true, axis=-1, keepdims=True))
        return tf.keras.losses.categorical_crossentropy(targets, y_pred, from_logits=True)


class PairwiseLogisticLoss(tf.keras.losses.Loss):
    """Logistic loss on every pair ordered by the labels, averaged over the list's pairs.

        L = mean over {(i, j): y_i > y_j} of log(1 + exp(-(s_i - s_j)))

    A list without such pairs (all labels equal) has loss 0.
    """

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """``y_true, y_pred: [batch_size, list_size]`` -> ``[batch_size]``."""
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.cast(y_true, y_pred.dtype)
        # pairs[b, i, j] = 1 where item i should rank above item j.
        pairs = tf.cast(y_true[:, :, None] > y_true[:, None, :], y_pred.dtype)
        margins = y_pred[:, :, None] - y_pred[:, None, :]
        pair_losses = tf.math.softplus(-margins) * pairs
        return tf.math.divide_no_nan(
            tf.reduce_sum(pair_losses, axis=[1, 2]), tf.reduce_sum(pairs, axis=[1, 2])
        )




def relevance_loss(name: str) -> tf.keras.losses.Loss:
    """The relevance loss called ``name``.

    - ``listwise_softmax``: :class:`ListwiseSoftmaxLoss`.
    - ``pairwise_logistic``: :class:`PairwiseLogisticLoss`.
    - ``pointwise_bce``: ``tf.keras.losses.BinaryCrossentropy(from_logits=True)``, labels in
      [0, 1], averaged over the list's entries.
    - ``pointwise_mse``: ``tf.keras.losses.MeanSquaredError()``, scores regress the labels.
    """
    if name == "listwise_softmax":
        return ListwiseSoftmaxLoss(name=name)
    if name == "pairwise_logistic":
        return PairwiseLogisticLoss(name=name)
    if name == "pointwise_bce":
        return tf.keras.losses.BinaryCrossentropy(from_logits=True, name=name)
    if name == "pointwise_mse":
        return tf.keras.losses.MeanSquaredError(name=name)
    raise ValueError(
        f"unknown relevance loss {name!r}; choose one of {', '.join(RELEVANCE_LOSSES)}"
    )


def combined_loss(relevance: tf.Tensor, diversity: tf.Tensor, lambda_div: float) -> tf.Tensor:
    """``L = L_rel + lambda_div * L_div``; ``lambda_div = 0`` trains for relevance only.

    Args:
      relevance: relevance loss, a scalar or [batch_size].
      diversity: entropy-diversity loss, same shape (or broadcastable).
      lambda_div: weight of the diversity term, >= 0.
    """
    if lambda_div < 0:
        raise ValueError(f"lambda_div must be >= 0, got {lambda_div}")
    relevance = tf.convert_to_tensor(relevance)
    return relevance + tf.cast(lambda_div, relevance.dtype) * tf.cast(diversity, relevance.dtype)
