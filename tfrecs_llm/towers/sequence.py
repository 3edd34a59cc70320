"""Sequential query tower: the user's recent items (their item-tower embeddings) through causal
self-attention, plus BERT over the free text -> projection -> L2 norm."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tf_keras

from tfrecs_llm.config import ModelConfig
from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.towers.attention import CausalSelfAttentionBlock


class SequenceQueryTower(tf_keras.Model):
    """Embeds users from what they did and what they say.

    ``encode(history, padding, pooled_text)``: ``history: [batch, length, item_dim]`` item
    embeddings, oldest first and right-aligned (``padding: [batch, length]`` bool marks real
    items), ``pooled_text: [batch, length, hidden_dim]`` (or ``[batch, hidden_dim]``) pooled BERT
    output of the free text at each position -> ``[batch, length, embedding_dim]`` unit-norm
    queries, position ``j`` for the next item after ``j``. ``call`` returns the last position:
    ``{"history_embeddings", "history_padding"}`` plus ``user_text`` (raw) or
    ``user_text_embedding`` -> ``[batch, embedding_dim]``.

    It has no config (``get_config`` raises ``NotImplementedError``, Keras's way to say so): it
    holds a BERT, which a config cannot carry. It is saved as weights and rebuilt by
    ``Recommender.load``.
    """

    def __init__(self, encoder: TextEncoder, config: ModelConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.embedding_dim = config.embedding_dim
        self.history_length = config.history_length
        hidden = config.embedding_dim
        self.item_projection = tf_keras.layers.Dense(hidden, name="history_item_projection")
        self.positions = tf_keras.layers.Embedding(config.history_length, hidden, name="history_positions")
        self.input_dropout = tf_keras.layers.Dropout(config.history_dropout)
        self.blocks = [
            CausalSelfAttentionBlock(hidden, config.history_heads, config.history_dropout, name=f"history_block_{i}")
            for i in range(config.history_blocks)
        ]
        self.final_norm = tf_keras.layers.LayerNormalization(epsilon=1e-8)
        self.text_projection = tf_keras.layers.Dense(hidden, name="free_text_projection")
        self.projection = tf_keras.layers.Dense(config.embedding_dim, name="query_projection")

    def encode(
        self, history: tf.Tensor, padding: tf.Tensor, pooled_text: tf.Tensor, training: bool | None = None
    ) -> tf.Tensor:
        length = tf.shape(history)[1]
        positions = tf.range(self.history_length - length, self.history_length)
        states = self.item_projection(history) + self.positions(positions)[tf.newaxis]
        states = self.input_dropout(states, training=training) * tf.cast(padding, states.dtype)[..., tf.newaxis]
        for block in self.blocks:
            states = block(states, padding, training=training)
        states = self.final_norm(states)
        text = self.text_projection(pooled_text)
        if text.shape.rank == 2:
            text = tf.broadcast_to(text[:, tf.newaxis, :], tf.shape(states))
        return tf.math.l2_normalize(self.projection(tf.concat([states, text], -1)), axis=-1)

    def call(self, features: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        if "user_text_embedding" in features:
            pooled = features["user_text_embedding"]
        else:
            pooled = self.encoder(features["user_text"], training=training)
        queries = self.encode(features["history_embeddings"], features["history_padding"], pooled, training)
        return queries[:, -1]

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} holds a BERT, which a config cannot carry; restore it from its "
            "checkpoint (Recommender.load)"
        )
