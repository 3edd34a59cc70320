"""Item tower: description text (+ item id) -> projection -> L2 norm."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import tensorflow as tf
import tf_keras

from tfrecs_llm.config import ModelConfig


class ItemTower(tf_keras.Model):
    """Embeds items from their description and id.

    Inputs (a mapping):
      ``item_id: [batch_size] string``;
      ``item_text_embedding: [batch_size, text_dim]`` (cached pretrained-encoder output) when
      ``item_text_encoder == "pretrained"``, or ``item_text: [batch_size] string`` for
      ``bag_of_words``.
    Output: ``[batch_size, embedding_dim]`` unit-norm item embeddings.

    Ids outside the training vocabulary map to OOV buckets. During training a fraction
    ``id_dropout`` of ids is replaced by the OOV bucket, so the OOV embedding learns to stand for
    "an item known by its text alone" and fresh items embed sensibly.

    It has no config (``get_config`` raises ``NotImplementedError``, Keras's way to say so): it
    holds the id vocabulary and a fitted text vectorizer, which a config cannot carry. It is saved as weights
    (``tf.train.Checkpoint``, SavedModel) and rebuilt by ``Recommender.load``.
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        config: ModelConfig,
        bag_of_words_texts: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_config = config
        self.uses_pretrained_text = config.item_text_encoder == "pretrained"
        self.id_dropout = config.item_id_dropout
        self.id_lookup = tf_keras.layers.StringLookup(
            vocabulary=list(item_ids), num_oov_indices=config.num_oov_buckets, mask_token=None
        )
        self.id_embedding = None
        if config.item_id_embedding_dim > 0:
            self.id_embedding = tf_keras.layers.Embedding(
                self.id_lookup.vocabulary_size(), config.item_id_embedding_dim, name="item_id_embedding"
            )
        self.vectorizer = None
        if not self.uses_pretrained_text:
            if bag_of_words_texts is None:
                raise ValueError("item_text_encoder='bag_of_words' needs the catalog texts to adapt on")
            self.vectorizer = tf_keras.layers.TextVectorization(
                max_tokens=config.bag_of_words_vocab_size, output_mode="tf_idf"
            )
            self.vectorizer.adapt(tf.constant(list(bag_of_words_texts)))
            self.text_projection = tf_keras.layers.Dense(config.embedding_dim, name="bow_projection")
        self.projection = tf_keras.layers.Dense(config.embedding_dim, name="item_projection")

    def call(self, features: Mapping[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        if self.uses_pretrained_text:
            parts = [features["item_text_embedding"]]
        else:
            texts = tf.reshape(features["item_text"], [-1])
            parts = [self.text_projection(self.vectorizer(texts))]
        if self.id_embedding is not None:
            indices = self.id_lookup(tf.reshape(features["item_id"], [-1]))
            if training and self.id_dropout > 0:
                dropped = tf.random.uniform(tf.shape(indices)) < self.id_dropout
                indices = tf.where(dropped, tf.zeros_like(indices), indices)
            parts.append(self.id_embedding(indices))
        return tf.math.l2_normalize(self.projection(tf.concat(parts, axis=-1)), axis=-1)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"{type(self).__name__} holds the id vocabulary and a fitted text vectorizer, which a "
            "config cannot carry; restore it from its checkpoint (Recommender.load)"
        )
