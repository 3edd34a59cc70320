"""Query tower: user text -> BERT -> masked mean pooling -> projection -> L2 norm."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tf_keras

from tfrecs_llm.text.encoder import TextEncoder


class QueryTower(tf_keras.Model):
    """Embeds users from their text.

    Input: a mapping with ``user_text: [batch_size] string`` or, when training on a frozen
    encoder, the cached ``user_text_embedding: [batch_size, hidden_dim]`` (the encoder's pooled
    output). Output: ``[batch_size, embedding_dim]`` unit-norm query embeddings.

    It has no config (``get_config`` raises ``NotImplementedError``, Keras's way to say so): it
    holds a BERT, which a config cannot carry. It is saved as weights
    (``tf.train.Checkpoint``, SavedModel) and rebuilt by ``Recommender.load``.
    """

    def __init__(self, encoder: TextEncoder, embedding_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.projection = tf_keras.layers.Dense(embedding_dim, name="query_projection")

    def call(self, features: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        if "user_text_embedding" in features:
            pooled = features["user_text_embedding"]
        elif "user_token_ids" in features:
            # Tokenized by the input pipeline (tfrecs_llm.text.preprocessing.tokenize_in_pipeline).
            pooled = self.encoder.pool_tokens(
                features["user_token_ids"], features["user_padding_mask"], training=training
            )
        else:
            pooled = self.encoder(features["user_text"], training=training)
        return self.project(pooled)

    def project(self, pooled: tf.Tensor) -> tf.Tensor:
        """``pooled: [batch_size, hidden_dim]`` -> ``[batch_size, embedding_dim]``, unit norm."""
        return tf.math.l2_normalize(self.projection(pooled), axis=-1)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} holds a BERT, which a config cannot carry; "
            "restore it from its checkpoint (Recommender.load)"
        )
