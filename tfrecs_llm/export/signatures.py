"""The ``tf.Module`` that a SavedModel serves: raw user text in, item ids and scores out."""

from __future__ import annotations

import tensorflow as tf

from tfrecs_llm.index import top_k_excluding
from tfrecs_llm.towers import QueryTower


class RecommendModule(tf.Module):
    """Serving graph: tokenizer + BERT query tower + top-k index.

    Signatures:
      ``serving_default(user_text: [batch] string)`` ->
        ``item_ids: [batch, k] string``, ``scores: [batch, k] float32``.
      ``recommend_with_exclusions(user_text: [batch] string, exclude_item_ids: [batch, n] string)``
        -> the same outputs, never returning an excluded id (pad rows with "").
      ``embed_query(user_text: [batch] string)`` -> ``embeddings: [batch, embedding_dim]``.
    """

    def __init__(
        self, query_tower: QueryTower, index: tf.keras.layers.Layer, k: int, num_items: int
    ) -> None:
        super().__init__()
        self.query_tower = query_tower
        self.index = index
        self.k = k
        self.num_items = num_items

    def _embed(self, user_text: tf.Tensor) -> tf.Tensor:
        return self.query_tower({"user_text": user_text}, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_text")])
    def serve(self, user_text: tf.Tensor) -> dict[str, tf.Tensor]:
        scores, ids = self.index(self._embed(user_text), k=self.k)
        return {"item_ids": ids, "scores": scores}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_text"),
            tf.TensorSpec([None, None], tf.string, name="exclude_item_ids"),
        ]
    )
    def serve_with_exclusions(
        self, user_text: tf.Tensor, exclude_item_ids: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        scores, ids = top_k_excluding(
            self.index, self._embed(user_text), exclude_item_ids, self.k, self.num_items
        )
        return {"item_ids": ids, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_text")])
    def embed_query(self, user_text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embeddings": self._embed(user_text)}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            "serving_default": self.serve.get_concrete_function(),
            "recommend_with_exclusions": self.serve_with_exclusions.get_concrete_function(),
            "embed_query": self.embed_query.get_concrete_function(),
        }
