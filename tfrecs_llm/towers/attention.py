"""A causal self-attention block (pre-LayerNorm, residual, position-wise feed-forward), as in
SASRec (Kang & McAuley, 2018): the sequence encoder of the sequential query tower and of the
SASRec baseline."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras


class CausalSelfAttentionBlock(tf_keras.layers.Layer):
    """``states: [batch, length, hidden]``, ``padding: [batch, length]`` bool (True = item) ->
    ``[batch, length, hidden]``; position ``j`` attends to positions ``<= j`` only."""

    def __init__(self, hidden_dim: int, num_heads: int = 1, dropout: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_dim, self.num_heads, self.dropout_rate = hidden_dim, num_heads, dropout
        self.attention_norm = tf_keras.layers.LayerNormalization(epsilon=1e-8)
        self.attention = tf_keras.layers.MultiHeadAttention(num_heads, hidden_dim // num_heads, dropout=dropout)
        self.feed_forward_norm = tf_keras.layers.LayerNormalization(epsilon=1e-8)
        self.feed_forward = tf_keras.Sequential([
            tf_keras.layers.Dense(hidden_dim, activation="relu"),
            tf_keras.layers.Dropout(dropout),
            tf_keras.layers.Dense(hidden_dim),
            tf_keras.layers.Dropout(dropout),
        ])

    def call(self, states: tf.Tensor, padding: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        length = tf.shape(states)[1]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        mask = causal[tf.newaxis] & padding[:, tf.newaxis, :]
        normed = self.attention_norm(states)
        states = states + self.attention(normed, states, attention_mask=mask, training=training)
        states = states + self.feed_forward(self.feed_forward_norm(states), training=training)
        return states * tf.cast(padding, states.dtype)[..., tf.newaxis]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "dropout": self.dropout_rate}
