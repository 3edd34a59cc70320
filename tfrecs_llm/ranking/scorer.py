"""The ranking head's scoring layer: one score per retrieved candidate, from the query and the list."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf
import tf_keras


class CandidateScorer(tf_keras.layers.Layer):
    """Scores each candidate of a list from the query and the list as a whole.

    Per candidate it reads: the query-item interaction ``q * e_i`` (``[d]``), the retrieval
    score, the item's log popularity and age, and how much its topic is shared by the rest of
    the list (``c_i . mean_j c_j``, the feature through which diversity can be learned).

    The score is ``w * retrieval_score + MLP(features)``, with ``w`` starting at the retrieval
    model's inverse temperature.

    Inputs: ``query_embedding: [batch, d]``, ``candidate_rows: [batch, list]`` (catalog rows),
    ``retrieval_score: [batch, list]``. Output: ``[batch, list]`` scores.
    """

    def __init__(
        self,
        item_embeddings: np.ndarray,
        item_scalars: np.ndarray,
        item_topics: np.ndarray,
        hidden_units: int,
        retrieval_temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Starts as the retrieval model's own logits (score / temperature); the MLP learns a
        # correction, so an untrained ranker already keeps retrieval order.
        self.retrieval_weight = tf.Variable(1.0 / retrieval_temperature, name="retrieval_weight")
        self.item_embeddings = tf.Variable(item_embeddings, trainable=False, dtype=tf.float32, name="item_embeddings")
        self.item_scalars = tf.Variable(item_scalars, trainable=False, dtype=tf.float32, name="item_scalars")
        self.item_topics = tf.Variable(item_topics, trainable=False, dtype=tf.float32, name="item_topics")
        self.normalize = tf_keras.layers.Normalization(axis=-1)
        self.hidden = tf_keras.layers.Dense(hidden_units, activation="relu")
        self.output_layer = tf_keras.layers.Dense(1, kernel_initializer="zeros")

    def scalar_features(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """``[batch, list, 4]``: retrieval score, log popularity, age, in-list topic share."""
        rows = features["candidate_rows"]
        topics = tf.gather(self.item_topics, rows)
        share = tf.reduce_sum(topics * tf.reduce_mean(topics, axis=1, keepdims=True), axis=-1)
        return tf.concat(
            [features["retrieval_score"][..., tf.newaxis], tf.gather(self.item_scalars, rows), share[..., tf.newaxis]],
            axis=-1,
        )

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        # A dense read (not a gather on the variable, which would make every later dense read of
        # the serving stage's shared item table copy it whole; see RankingStage.item_table).
        return self.score(features, tf.convert_to_tensor(self.item_embeddings))

    def score(self, features: Mapping[str, tf.Tensor], item_table: tf.Tensor) -> tf.Tensor:
        """As ``call``, with candidates' embeddings gathered from ``item_table: [num_items, d]``
        (another owner's copy of this scorer's table, so that an export stores it once)."""
        rows = features["candidate_rows"]
        item_embeddings = tf.gather(item_table, rows)
        interaction = features["query_embedding"][:, tf.newaxis, :] * item_embeddings
        inputs = tf.concat([interaction, self.normalize(self.scalar_features(features))], axis=-1)
        correction = tf.squeeze(self.output_layer(self.hidden(inputs)), axis=-1)
        return self.retrieval_weight * features["retrieval_score"] + correction
