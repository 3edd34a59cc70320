"""The serving path after the query embedding: retrieve K -> rank -> MMR -> top k -> reasons.

One ``tf.Module`` serves the Python API (eagerly) and the exported SavedModel (in a graph), so
both return the same items for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.index import ScannIndex, top_k_excluding
from tfrecs_llm.ranking.explain import STOPWORDS, explain
from tfrecs_llm.ranking.id_rows import row_lookup_table
from tfrecs_llm.ranking.mmr import mmr_rerank
from tfrecs_llm.ranking.scorer import CandidateScorer

_NEG_INF = float("-inf")


def _index_table(index: tf.keras.layers.Layer) -> tf.Variable | None:
    """The float item table an index searches: exact search's candidates, ScaNN's re-scoring copy."""
    if isinstance(index, ScannIndex):
        return index.rescoring_dataset
    return _weight_named(index, "candidates")


def _weight_named(layer: tf.keras.layers.Layer, name: str) -> tf.Variable | None:
    """The layer's weight called ``name`` (TFRS's BruteForce adds ``candidates`` and
    ``identifiers`` with ``add_weight``), read through Keras's public ``weights``."""
    found = [w for w in layer.weights if w.name.split("/")[-1].split(":")[0] == name]
    return found[0] if len(found) == 1 else None


def _shared_table(
    index: tf.keras.layers.Layer, scorer: CandidateScorer | None, item_embeddings: np.ndarray
) -> tf.Variable:
    """One variable for the item embedding table ``[num_items, d]`` (possibly stored flat).

    The index and the ranker already hold a table; when one holds exactly these values in the
    same row order it is reused, so that a SavedModel stores 1M x 64 floats once rather than two
    or three times. A variable shared by several owners is saved and restored once.
    """
    for table in (_index_table(index), scorer.item_embeddings if scorer is not None else None):
        if _holds(table, item_embeddings):
            return table
    return tf.Variable(item_embeddings, trainable=False, dtype=tf.float32)


def _holds(table: tf.Variable | None, values: np.ndarray) -> bool:
    """Whether ``table`` is a float32 variable holding exactly ``values`` (flat or not)."""
    if not isinstance(table, tf.Variable) or table.dtype != tf.float32:
        return False
    stored = table.numpy()
    return stored.size == values.size and np.array_equal(stored.reshape(values.shape), values)


def _shared_ids(index: tf.keras.layers.Layer, item_ids: np.ndarray) -> tf.Variable:
    """A string variable ``[num_items]`` of the ids in row order: the index's own when it matches."""
    expected = tf.constant(np.asarray(item_ids).astype(str))
    ids = _weight_named(index, "identifiers")
    if (
        isinstance(ids, tf.Variable)
        and ids.dtype == tf.string
        and ids.shape == expected.shape
        and bool(tf.reduce_all(tf.convert_to_tensor(ids) == expected))
    ):
        return ids
    return tf.Variable(expected, trainable=False)


def _title_lengths(item_titles: list[str], item_texts: list[str]) -> np.ndarray | None:
    """UTF-8 byte length of each title when every text starts with its title, else None."""
    titles = [str(t).encode("utf-8") for t in item_titles]
    if not all(str(text).encode("utf-8").startswith(title) for title, text in zip(titles, item_texts)):
        return None
    return np.array([len(t) for t in titles], np.int32)


class _ScorerOnStageTable(tf.Module):
    """The ranker reading the stage's item table instead of its own copy of the same values.

    Tracks everything the scorer reads except its table, so a SavedModel of the stage stores
    the table once (the index's) rather than again for the ranker. The trained scorer itself is
    left unchanged. Call: as ``CandidateScorer``.
    """

    def __init__(self, scorer: CandidateScorer, table: Callable[[], tf.Tensor]) -> None:
        super().__init__()
        self.layers = [scorer.normalize, scorer.hidden, scorer.output_layer]
        self.tables = [scorer.retrieval_weight, scorer.item_scalars, scorer.item_topics]
        self._score = scorer.score  # a bound method: not tracked, so the scorer's table is not saved
        self._table = table

    def __call__(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        return self._score(features, self._table())


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
        item_embeddings = np.asarray(item_embeddings, np.float32)
        sizes = {"item_embeddings": len(item_embeddings), "item_titles": len(item_titles), "item_texts": len(item_texts)}
        for name, size in sizes.items():
            if size != len(item_ids):
                raise ValueError(f"{name} has {size} rows for {len(item_ids)} item_ids (one per item expected)")
        if item_embeddings.ndim != 2:
            raise ValueError(f"item_embeddings must be [num_items, d], got shape {item_embeddings.shape}")
        self.index = index
        self.num_items = len(item_ids)
        self.num_candidates = min(num_candidates, len(item_ids))
        self.embedding_dim = item_embeddings.shape[1]
        self.item_ids = _shared_ids(index, item_ids)
        self.row_of = row_lookup_table(self.item_ids)
        self.item_embeddings = _shared_table(index, scorer, item_embeddings)
        self.scorer = scorer
        own_table = scorer is not None and scorer.item_embeddings is not self.item_embeddings
        if own_table and _holds(scorer.item_embeddings, item_embeddings):
            self.scorer = _ScorerOnStageTable(scorer, self.item_table)
        self.item_texts = tf.Variable(list(item_texts), trainable=False, dtype=tf.string)
        # Item texts are "title. description": titles are then stored as byte lengths and cut
        # from the texts of the few rows a reason names, instead of a second column of strings.
        lengths = _title_lengths(item_titles, item_texts)
        self.item_title_lengths = None if lengths is None else tf.Variable(lengths, trainable=False)
        self.item_titles = None if lengths is not None else tf.Variable(item_titles, trainable=False, dtype=tf.string)
        self.stopwords = tf.constant(STOPWORDS)

    def item_table(self) -> tf.Tensor:
        """A dense read of the item embeddings: ``[num_items, d]`` float32."""
        # Gather from this dense read, never from the variable itself: a gather on a variable
        # (ResourceGather) switches it to copy-on-read, after which every dense read (exact
        # search, ScaNN, reasons) copies the whole [num_items, d] table: +220 ms per query at 1M x 64.
        dense = tf.convert_to_tensor(self.item_embeddings)
        return tf.reshape(dense, [self.num_items, self.embedding_dim])

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
        embeddings = tf.gather(self.item_table(), tf.maximum(rows, 0))
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
            rows, history_rows, self.item_table(), self.item_titles, self.item_texts,
            tf.reshape(user_text, [-1]), self.stopwords, item_title_lengths=self.item_title_lengths,
        )


def build_stage(
    index: tf.keras.layers.Layer,
    scorer: CandidateScorer | None,
    catalog: Catalog,
    item_embeddings: np.ndarray,
    num_candidates: int,
) -> RankingStage:
    """A RankingStage over ``index`` (a top-k layer over ``item_embeddings: [num_items, d]`` of
    ``catalog``, in catalog order) and the trained ranker ``scorer`` (``None``: retrieval order)."""
    return RankingStage(
        index,
        scorer,
        catalog.item_ids,
        item_embeddings,
        catalog.items["title"].astype(str).tolist(),
        catalog.texts,
        num_candidates,
    )
