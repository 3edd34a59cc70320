"""The serving path after the query embedding: retrieve K -> rank -> MMR -> top k -> reasons.

One ``tf.Module`` serves the Python API (eagerly) and the exported SavedModel (in a graph), so
both return the same items for the same inputs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfrecs_llm.index import top_k_excluding
from tfrecs_llm.models.ranking import CandidateScorer
from tfrecs_llm.ranking.explain import STOPWORDS, explain
from tfrecs_llm.ranking.mmr import mmr_rerank

_NEG_INF = float("-inf")


def _shared_table(
    index: tf.keras.layers.Layer, scorer: CandidateScorer | None, item_embeddings: np.ndarray
) -> tf.Variable:
    """One variable for the item embedding table ``[num_items, d]``.

    The exact index and the ranker already hold a table; when one holds exactly these values it
    is reused, so that a SavedModel stores 1M x 64 floats once rather than two or three times.
    """
    item_embeddings = np.asarray(item_embeddings, np.float32)
    owners = [getattr(index, "_candidates", None), scorer.item_embeddings if scorer is not None else None]
    for table in owners:
        if (
            isinstance(table, tf.Variable)
            and tuple(table.shape) == item_embeddings.shape
            and np.array_equal(table.numpy(), item_embeddings)
        ):
            return table
    return tf.Variable(item_embeddings, trainable=False, dtype=tf.float32)


class RankingStage(tf.Module):
    """Turns query embeddings into the final top-k with scores and grounded reasons.

    ``scorer`` is the trained ranking head (``None``: retrieval order). ``diversity`` ``d`` in
    [0, 1] re-ranks with MMR, ``(1 - d) * rel - d * max sim to chosen``, where ``rel`` is the
    list's score min-max scaled to [0, 1]; ``d = 0`` keeps the (ranker's) order.
    """

    def __init__(
        self,
        index: tf.keras.layers.Layer,
        scorer: CandidateScorer | None,
        item_ids: np.ndarray,
        item_embeddings: np.ndarray,
        item_titles: list[str],
        item_texts: list[str],
        num_candidates: int,
    ) -> None:
        super().__init__()
        self.index = index
        self.scorer = scorer
        self.num_items = len(item_ids)
        self.num_candidates = min(num_candidates, len(item_ids))
        self.row_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(np.asarray(item_ids, str)), tf.range(len(item_ids), dtype=tf.int32)
            ),
            default_value=-1,
        )
        self.item_embeddings = _shared_table(index, scorer, item_embeddings)
        self.item_titles = tf.Variable(item_titles, trainable=False, dtype=tf.string)
        self.item_texts = tf.Variable(item_texts, trainable=False, dtype=tf.string)
        self.stopwords = tf.constant(STOPWORDS)

    def recommend(
        self,
        query_embeddings: tf.Tensor,
        exclude_item_ids: tf.Tensor,
        k: int,
        diversity: tf.Tensor | float = 0.0,
    ) -> dict[str, tf.Tensor]:
        """``query_embeddings: [batch, d]``, ``exclude_item_ids: [batch, n]`` ("" pads).

        Returns ``item_ids [batch, k]`` string, ``scores [batch, k]`` and ``rows [batch, k]``.
        """
        retrieval, ids = top_k_excluding(
            self.index, query_embeddings, exclude_item_ids, max(k, self.num_candidates), self.num_items
        )
        rows = self.row_of.lookup(ids)
        valid = retrieval > _NEG_INF
        scores = retrieval
        if self.scorer is not None:
            features = {
                "query_embedding": query_embeddings,
                "candidate_rows": tf.maximum(rows, 0),
                "retrieval_score": tf.where(valid, retrieval, 0.0),
            }
            scores = tf.where(valid, self.scorer(features), _NEG_INF)
        low = tf.reduce_min(tf.where(valid, scores, np.inf), axis=1, keepdims=True)
        high = tf.reduce_max(scores, axis=1, keepdims=True)
        relevance = tf.where(valid, tf.math.divide_no_nan(scores - low, high - low), _NEG_INF)
        # Gather from a dense read, never from the variable itself: a gather on a variable
        # (ResourceGather) switches it to copy-on-read, after which every dense read (exact
        # search, reasons) copies the whole [num_items, d] table: +220 ms per query at 1M x 64.
        embeddings = tf.gather(tf.convert_to_tensor(self.item_embeddings), tf.maximum(rows, 0))
        chosen, _ = mmr_rerank(relevance, embeddings, k, diversity)
        return {
            "item_ids": tf.gather(ids, chosen, batch_dims=1),
            "scores": tf.gather(scores, chosen, batch_dims=1),
            "rows": tf.gather(rows, chosen, batch_dims=1),
        }

    def reasons(
        self, rows: tf.Tensor, history_item_ids: tf.Tensor, user_text: tf.Tensor
    ) -> tf.Tensor:
        """``[batch, k]`` reasons for ``rows``; ``history_item_ids: [batch, h]`` ("" pads)."""
        history_rows = self.row_of.lookup(history_item_ids)
        return explain(
            rows, history_rows, self.item_embeddings, self.item_titles, self.item_texts,
            tf.reshape(user_text, [-1]), self.stopwords,
        )
