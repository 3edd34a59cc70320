"""Streaming list-wise metrics for Keras (``tf.keras`` = tf_keras), graph-mode safe.

``NDCGAtK``, ``RecallAtK`` and ``MRR`` take ``y_true: [batch_size, list_size]`` relevance labels
(> 0 is relevant) and ``y_pred: [batch_size, list_size]`` scores, matching
``tfrs.tasks.Ranking(metrics=...)``. An item's 0-based rank is the number of other entries scoring
at least as high (ties count against it), as in :func:`tfrecs_llm.metrics.retrieval.target_ranks`;
with one relevant item per list they equal :func:`~tfrecs_llm.metrics.retrieval.ranking_metrics`.
Lists without a relevant item are left out of the mean. ``sample_weight`` is ``[batch_size]``.
"""

from __future__ import annotations

import abc
from typing import Any, Optional

import tensorflow as tf


def _pessimistic_ranks(scores: tf.Tensor) -> tf.Tensor:
    """``[batch_size, list_size]`` 0-based ranks: ``rank_i = |{j != i : s_j >= s_i}|``."""
    at_least_as_high = tf.cast(scores[:, None, :] >= scores[:, :, None], scores.dtype)
    return tf.reduce_sum(at_least_as_high, axis=-1) - 1.0


def _check_k(k: int) -> int:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


class _ListwiseRankingMetric(tf.keras.metrics.Mean):
    """Weighted mean over lists of ``per_list(labels, ranks)``."""

    def update_state(
        self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: Optional[tf.Tensor] = None
    ) -> tf.Operation:
        y_pred = tf.cast(y_pred, self.dtype)
        y_true = tf.cast(y_true, self.dtype)
        weights = tf.cast(tf.reduce_any(y_true > 0, axis=-1), self.dtype)
        if sample_weight is not None:
            weights *= tf.reshape(tf.cast(sample_weight, self.dtype), [-1])
        values = self.per_list(y_true, _pessimistic_ranks(y_pred))
        return super().update_state(values, sample_weight=weights)

    @abc.abstractmethod
    def per_list(self, labels: tf.Tensor, ranks: tf.Tensor) -> tf.Tensor:
        """``labels, ranks: [batch_size, list_size]`` -> ``[batch_size]``."""


class NDCGAtK(_ListwiseRankingMetric):
    """NDCG@k with exponential gains ``2^y - 1``.

        DCG@k = sum_{i: rank_i < k} (2^y_i - 1) / log2(rank_i + 2),  NDCG@k = DCG@k / ideal DCG@k
    """

    def __init__(self, k: int, name: Optional[str] = None, dtype: Any = None) -> None:
        self.k = _check_k(k)
        super().__init__(name=name or f"ndcg_at_{k}", dtype=dtype)

    def per_list(self, labels: tf.Tensor, ranks: tf.Tensor) -> tf.Tensor:
        gains = tf.pow(2.0, labels) - 1.0
        log2 = tf.math.log(tf.constant(2.0, labels.dtype))
        discounts = tf.where(ranks < self.k, log2 / tf.math.log(ranks + 2.0), 0.0)
        top = tf.minimum(self.k, tf.shape(labels)[-1])
        ideal_gains = tf.pow(2.0, tf.math.top_k(labels, top).values) - 1.0
        positions = tf.range(tf.cast(top, labels.dtype), dtype=labels.dtype)
        ideal_discounts = log2 / tf.math.log(positions + 2.0)
        return tf.math.divide_no_nan(
            tf.reduce_sum(gains * discounts, axis=-1),
            tf.reduce_sum(ideal_gains * ideal_discounts, axis=-1),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class RecallAtK(_ListwiseRankingMetric):
    """Share of a list's relevant items ranked in the top k."""

    def __init__(self, k: int, name: Optional[str] = None, dtype: Any = None) -> None:
        self.k = _check_k(k)
        super().__init__(name=name or f"recall_at_{k}", dtype=dtype)

    def per_list(self, labels: tf.Tensor, ranks: tf.Tensor) -> tf.Tensor:
        relevant = tf.cast(labels > 0, labels.dtype)
        hits = relevant * tf.cast(ranks < self.k, labels.dtype)
        return tf.math.divide_no_nan(tf.reduce_sum(hits, -1), tf.reduce_sum(relevant, -1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class MRR(_ListwiseRankingMetric):
    """Mean reciprocal rank of the best-ranked relevant item: ``1 / (min rank + 1)``."""

    def __init__(self, name: str = "mrr", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def per_list(self, labels: tf.Tensor, ranks: tf.Tensor) -> tf.Tensor:
        # Irrelevant entries get rank list_size, beyond any real rank.
        list_size = tf.cast(tf.shape(ranks)[-1], ranks.dtype)
        best = tf.reduce_min(tf.where(labels > 0, ranks, list_size), axis=-1)
        return 1.0 / (best + 1.0)


class CategoryEntropyAtK(tf.keras.metrics.Mean):
    """Mean Shannon entropy (nats) of the topic mix of each list's top k by score.

        H = -sum_t q_t log q_t,   q = mean of the top-k items' topic distributions

    The graph counterpart of :func:`tfrecs_llm.metrics.diversity.category_entropy_at_k`
    (equal for one-hot topics); ties in score go to the lower list position.
    """

    def __init__(self, k: int, name: Optional[str] = None, dtype: Any = None) -> None:
        self.k = _check_k(k)
        super().__init__(name=name or f"category_entropy_at_{k}", dtype=dtype)

    def update_state(
        self,
        scores: tf.Tensor,
        topic_distributions: tf.Tensor,
        sample_weight: Optional[tf.Tensor] = None,
    ) -> tf.Operation:
        """``scores: [batch_size, list_size]``, ``topic_distributions: [batch_size, list_size,
        num_topics]``, ``sample_weight: [batch_size]``."""
        scores = tf.cast(scores, self.dtype)
        top = tf.math.top_k(scores, tf.minimum(self.k, tf.shape(scores)[-1])).indices
        top_topics = tf.gather(tf.cast(topic_distributions, self.dtype), top, batch_dims=1)
        shares = tf.reduce_mean(top_topics, axis=1)
        entropy = -tf.reduce_sum(tf.math.xlogy(shares, shares), axis=-1)
        if sample_weight is not None:
            sample_weight = tf.reshape(sample_weight, [-1])
        return super().update_state(entropy, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}
