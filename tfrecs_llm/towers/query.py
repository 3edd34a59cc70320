"""Query tower: user text -> BERT -> masked mean pooling -> projection (+ hashed words) -> L2 norm."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tf_keras

from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.towers.word_features import HashedWordEmbedding


class QueryTower(tf_keras.Model):
    """Embeds users from their text.

    Input: a mapping with ``user_text: [batch_size] string`` and, when training on a frozen
    encoder, the cached ``user_text_embedding: [batch_size, hidden_dim]`` (the encoder's pooled
    output), which then replaces running BERT. Output: ``[batch_size, embedding_dim]`` unit-norm
    query embeddings.

    ``hidden_units > 0`` puts a ReLU layer between the pooled BERT output and the projection;
    ``word_buckets > 0`` adds learned hashed word/bigram embeddings of the same text
    (`HashedWordEmbedding`), which keep the exact titles a user text names.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        embedding_dim: int,
        hidden_units: int = 0,
        word_buckets: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.embedding_dim = embedding_dim
        self.hidden = (
            tf_keras.layers.Dense(hidden_units, activation="relu", name="query_hidden")
            if hidden_units
            else None
        )
        self.projection = tf_keras.layers.Dense(embedding_dim, name="query_projection")
        self.words = HashedWordEmbedding(word_buckets, embedding_dim) if word_buckets else None

    def call(self, features: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        if "user_text_embedding" in features:
            pooled = features["user_text_embedding"]
        elif "user_token_ids" in features:
            # Tokenized by the input pipeline (tfrecs_llm.text.finetune.tokenize_in_pipeline).
            pooled = self.encoder.pool_tokens(
                features["user_token_ids"], features["user_padding_mask"], training=training
            )
        else:
            pooled = self.encoder(features["user_text"], training=training)
        return self.project(pooled, features.get("user_text"))

    def project(self, pooled: tf.Tensor, texts: tf.Tensor | None = None) -> tf.Tensor:
        """``pooled: [batch_size, hidden_dim]`` (and ``texts: [batch_size]``, which the word
        features need) -> ``[batch_size, embedding_dim]``, unit norm."""
        hidden = self.hidden(pooled) if self.hidden is not None else pooled
        embedding = self.projection(hidden)
        if self.words is not None:
            if texts is None:
                raise ValueError("this query tower has word features: pass the user texts too")
            embedding = embedding + self.words(texts)
        return tf.math.l2_normalize(embedding, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {"embedding_dim": self.embedding_dim}
