"""The sequential two-tower retrieval model (TFRS): next-item prediction at every position.

Each training example is a window of a user's sequence (``tfrecs_llm.data.sequences``): the
query at position ``j`` reads the items up to ``j`` (causal self-attention over their item-tower
embeddings) and the free text of the event it predicts, and is trained to score the next item
highest among the whole catalog (a full softmax, while the catalog is small enough) or among
uniformly sampled items. One window trains ``length`` queries at once, so a pass over the data
costs about as much as one over the events, not ``length`` times more.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from tfrecs_llm.towers import ItemTower
from tfrecs_llm.towers.sequence import SequenceQueryTower
from tfrecs_llm.models.base import Model


class SequentialTwoTowerModel(Model):
    """``features``: ``history_rows, target_rows, text_index: [batch, length]`` int32 (rows are
    catalog row + 1, 0 pads) and ``weights: [batch, length]`` (which positions train).

    ``catalog_features``: the item tower's inputs for every catalog row (constant tensors);
    ``scored_rows``: the rows the softmax runs over, the items with training events: an item
    nobody has interacted with yet is unknown, not a negative (scored as one at every step, its
    text would be pushed away from every query and cold items could never be recommended);
    ``text_table: [num_texts, hidden_dim]`` pooled BERT output of the distinct free texts.
    ``num_negatives``: 0 for a softmax over all ``scored_rows``, else that many of them sampled
    uniformly (plus the batch's targets) per step.
    """

    def __init__(
        self,
        query_tower: SequenceQueryTower,
        item_tower: ItemTower,
        catalog_features: Mapping[str, np.ndarray],
        scored_rows: np.ndarray,
        text_table: np.ndarray,
        temperature: float,
        num_negatives: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.item_tower = item_tower
        self.set_catalog(catalog_features, scored_rows)
        self.text_table = tf.constant(np.asarray(text_table, np.float32))
        self.temperature = temperature
        self.num_negatives = num_negatives

    def set_catalog(self, catalog_features: Mapping[str, np.ndarray], scored_rows: np.ndarray) -> None:
        """The catalog rows refer to (``add_items`` extends it) and the rows the softmax scores."""
        self.catalog_features = {name: tf.constant(values) for name, values in catalog_features.items()}
        self.num_items = len(next(iter(catalog_features.values())))
        self.scored_rows = tf.constant(np.asarray(scored_rows, np.int32))

    def set_text_table(self, text_table: np.ndarray) -> None:
        """The free texts ``text_index`` points into (``update`` brings new ones)."""
        self.text_table = tf.constant(np.asarray(text_table, np.float32))

    def _candidates(self, history: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """``[num_candidates]`` rows the queries are scored against: every scored row, or a
        uniform sample of them, plus the batch's targets and history items."""
        if not self.num_negatives:
            rows, _ = tf.unique(tf.concat([self.scored_rows, tf.reshape(targets, [-1]), tf.reshape(history, [-1])], 0))
            return rows
        picks = tf.random.uniform([self.num_negatives], 0, tf.size(self.scored_rows), tf.int32)
        sampled = tf.gather(self.scored_rows, picks)
        rows, _ = tf.unique(tf.concat([tf.reshape(targets, [-1]), tf.reshape(history, [-1]), sampled], 0))
        return rows

    def compute_loss(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        history, targets = features["history_rows"], features["target_rows"]
        weights = tf.cast(features["weights"], tf.float32) * tf.cast(targets > 0, tf.float32)
        history_rows, target_rows = tf.maximum(history - 1, 0), tf.maximum(targets - 1, 0)
        rows = self._candidates(history_rows, target_rows)
        embeddings = self.item_tower(
            {name: tf.gather(values, rows) for name, values in self.catalog_features.items()}, training=training
        )
        # Catalog row -> position among the candidates; histories read the same freshly
        # computed embeddings the targets are scored on (0 is padding).
        position = tf.scatter_nd(rows[:, tf.newaxis], tf.range(1, tf.size(rows) + 1), [self.num_items])
        padded = tf.concat([tf.zeros_like(embeddings[:1]), embeddings], 0)
        history_embeddings = tf.gather(padded, tf.where(history > 0, tf.gather(position, history_rows), 0))
        texts = tf.gather(self.text_table, features["text_index"])
        queries = self.query_tower.encode(history_embeddings, history > 0, texts, training=training)
        logits = tf.einsum("bld,nd->bln", queries, embeddings) / self.temperature
        labels = tf.gather(position, target_rows) - 1
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # Averaged over the positions that train; each replica's share, as Keras sums them.
        return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0) / replicas
