"""The ``tf.Module`` that a SavedModel serves: raw user text in; item ids, scores, reasons out."""

from __future__ import annotations

import tensorflow as tf

from tfrecs_llm.ranking.stage import RankingStage
from tfrecs_llm.text.compiled import CompiledEncoder
from tfrecs_llm.towers import ItemTower, QueryTower
from tfrecs_llm.towers.sequence import SequenceQueryTower

_TEXT = tf.TensorSpec([None], tf.string, name="user_text")
_EXCLUDE = tf.TensorSpec([None, None], tf.string, name="exclude_item_ids")
_HISTORY = tf.TensorSpec([None, None], tf.string, name="history_item_ids")
_DIVERSITY = tf.TensorSpec([None], tf.float32, name="diversity")


def right_aligned_rows(rows: tf.Tensor, length: int) -> tf.Tensor:
    """``rows: [batch, n]`` catalog rows, -1 for padding or unknown ids, oldest first ->
    ``[batch, length]`` int32 of the last ``length`` valid ones as row + 1, right-aligned (0 pads),
    as the sequential query tower was trained on."""
    valid = rows >= 0
    counts = tf.cumsum(tf.cast(valid, tf.int32), axis=1)
    positions = length - 1 - (counts[:, -1:] - counts)  # the newest valid item goes last
    keep = valid & (positions >= 0)
    batch = tf.broadcast_to(tf.range(tf.shape(rows)[0])[:, tf.newaxis], tf.shape(rows))
    indices = tf.stack([tf.boolean_mask(batch, keep), tf.boolean_mask(positions, keep)], axis=1)
    values = tf.boolean_mask(tf.cast(rows, tf.int32) + 1, keep)
    return tf.scatter_nd(indices, values, tf.stack([tf.shape(rows)[0], length]))


class RecommendModule(tf.Module):
    """Serving graph: tokenizer + BERT query tower + top-k index (+ ranker, MMR, reasons).

    Signatures (k is fixed at export; pad string matrices with ""):
      ``serving_default(user_text [batch])`` -> ``item_ids [batch, k]`` string,
        ``scores [batch, k]`` float32, ``reasons [batch, k]`` string.
      ``recommend_with_exclusions(user_text, exclude_item_ids [batch, n])`` -> the same, never
        returning an excluded id.
      ``recommend(user_text, exclude_item_ids [batch, n], history_item_ids [batch, h],
        diversity [batch])`` -> the same; the history (oldest first) grounds "Because you liked
        X" reasons, and a sequential query tower reads it (its last ``history_length`` known
        items); ``diversity`` in [0, 1] re-ranks with MMR (0 = relevance order). The other
        signatures of a sequential model see no history.
      ``embed_query(user_text)`` -> ``embeddings [batch, embedding_dim]``.
      ``recommend_from_embedding(query_embedding [batch, embedding_dim], user_text,
        exclude_item_ids, history_item_ids, diversity)`` -> as ``recommend``, for a query
        embedding ``embed_query`` returned earlier (servers cache them for repeated texts).
      ``embed_items(item_id [batch], item_text [batch])`` -> ``embeddings`` (when the item
        tower reads the same encoder as the query tower: frozen or bag-of-words).
    """

    def __init__(
        self,
        query_tower: QueryTower,
        item_tower: ItemTower,
        stage: RankingStage,
        k: int,
        embeds_items: bool,
        jit_compile: bool = False,
    ) -> None:
        super().__init__()
        self.query_tower = query_tower
        # Saving traces the Keras towers' training-mode calls too, and a fine-tuned BERT runs
        # dropout there: its seed states must be reachable from the root (they are kept out of
        # the encoder's own tracking, so checkpoints of the towers do not change).
        self.bert_dropout_seeds = query_tower.encoder.dropout_seed_variables()
        # XLA-compiled BERT (see tfrecs_llm.text.compiled): ~1.3x faster on CPU, but CPU TF
        # Serving then needs --xla_cpu_compilation_enabled=true.
        self.compiled_encoder = CompiledEncoder(query_tower.encoder) if jit_compile else None
        self.item_tower = item_tower
        self.stage = stage
        self.k = k
        self.embeds_items = embeds_items

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def _encode(self, texts: tf.Tensor) -> tf.Tensor:
        # One traced function shared by every signature: BERT and the tokenizer's vocabulary
        # appear once in the SavedModel's function library, not once per signature.
        if self.compiled_encoder is not None:
            return self.compiled_encoder(texts)
        return self.query_tower.encoder(texts, training=False)

    def _embed(self, user_text: tf.Tensor, history: tf.Tensor | None = None) -> tf.Tensor:
        if not isinstance(self.query_tower, SequenceQueryTower):
            return self.query_tower.project(self._encode(user_text))
        if history is None:
            history = tf.fill([tf.shape(user_text)[0], 0], "")
        rows = right_aligned_rows(self.stage.row_of.lookup(history), self.query_tower.history_length)
        table = tf.concat([tf.zeros([1, self.stage.embedding_dim]), self.stage.item_table()], 0)
        features = {"history_embeddings": tf.gather(table, rows), "history_padding": rows > 0,
                    "user_text_embedding": self._encode(user_text)}
        return self.query_tower(features, training=False)

    def _recommend(self, user_text, exclude, history, diversity) -> dict[str, tf.Tensor]:
        return self._rank(self._embed(user_text, history), user_text, exclude, history, diversity)

    def _rank(self, query_embedding, user_text, exclude, history, diversity) -> dict[str, tf.Tensor]:
        outputs = self.stage.recommend(query_embedding, exclude, self.k, diversity)
        reasons = self.stage.reasons(outputs["rows"], history, user_text)
        return {"item_ids": outputs["item_ids"], "scores": outputs["scores"], "reasons": reasons}

    @tf.function(input_signature=[_TEXT])
    def serve(self, user_text: tf.Tensor) -> dict[str, tf.Tensor]:
        empty = tf.fill([tf.shape(user_text)[0], 0], "")
        return self._recommend(user_text, empty, empty, 0.0)

    @tf.function(input_signature=[_TEXT, _EXCLUDE])
    def serve_with_exclusions(self, user_text: tf.Tensor, exclude_item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        empty = tf.fill([tf.shape(user_text)[0], 0], "")
        return self._recommend(user_text, exclude_item_ids, empty, 0.0)

    @tf.function(input_signature=[_TEXT, _EXCLUDE, _HISTORY, _DIVERSITY])
    def serve_full(self, user_text, exclude_item_ids, history_item_ids, diversity) -> dict[str, tf.Tensor]:
        return self._recommend(user_text, exclude_item_ids, history_item_ids, diversity)

    @tf.function
    def serve_from_embedding(
        self, query_embedding, user_text, exclude_item_ids, history_item_ids, diversity
    ) -> dict[str, tf.Tensor]:
        return self._rank(query_embedding, user_text, exclude_item_ids, history_item_ids, diversity)

    @tf.function(input_signature=[_TEXT])
    def embed_query(self, user_text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embeddings": self._embed(user_text)}

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="item_id"), tf.TensorSpec([None], tf.string, name="item_text")]
    )
    def embed_items(self, item_id: tf.Tensor, item_text: tf.Tensor) -> dict[str, tf.Tensor]:
        features = {"item_id": item_id, "item_text": item_text}
        if self.item_tower.uses_pretrained_text:
            features["item_text_embedding"] = self._encode(item_text)
        return {"embeddings": self.item_tower(features, training=False)}

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        signatures = {
            "serving_default": self.serve.get_concrete_function(),
            "recommend_with_exclusions": self.serve_with_exclusions.get_concrete_function(),
            "recommend": self.serve_full.get_concrete_function(),
            "embed_query": self.embed_query.get_concrete_function(),
            "recommend_from_embedding": self.serve_from_embedding.get_concrete_function(
                tf.TensorSpec([None, self.stage.embedding_dim], tf.float32, name="query_embedding"),
                _TEXT, _EXCLUDE, _HISTORY, _DIVERSITY,
            ),
        }
        if self.embeds_items:
            signatures["embed_items"] = self.embed_items.get_concrete_function()
        return signatures
