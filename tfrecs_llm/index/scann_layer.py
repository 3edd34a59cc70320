"""A TFRS top-k layer over a trained ScaNN searcher, with its search settings applied on every call.

TFRS's ``ScaNN`` layer trains its own searcher inside ``index()`` and fixes the leaves searched
and candidates re-scored in that searcher's config. Tuning needs the opposite order: train once,
measure recall at many search settings, ship that very searcher. ScaNN's training is not
repeatable (retraining moves recall@10 by about +-0.005), so a retrained searcher would not be
the one whose recall was measured. This layer takes the trained searcher and passes the chosen
settings to ScaNN's search op per call; it saves and serves with the same two ScaNN ops
(``TensorsToScann``, ``ScannSearchBatched``) as TFRS's layer.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs
from scann.scann_ops.py import scann_ops

TRAINING_ITERATIONS = 12
DIMENSIONS_PER_BLOCK = 2
"""TFRS ScaNN's defaults: k-means iterations of the partitioning, dims per 4-bit code."""


def train_searcher(
    candidates: tf.Tensor, k: int, num_leaves: int, num_reordering_candidates: int
) -> scann_ops.ScannSearcher:
    """Trains a ScaNN searcher over ``candidates: [num_items, dim]`` (dot product), TFRS's recipe.

    Tree of ``num_leaves`` partitions, asymmetric hashing, exact re-scoring kept for up to
    ``num_reordering_candidates`` (more can be asked per search). Search settings in the trained
    config are only defaults; ``ScannIndex`` passes its own.
    """
    return (
        scann_ops.builder(db=candidates, num_neighbors=k, distance_measure="dot_product")
        .tree(num_leaves=num_leaves, num_leaves_to_search=1, training_iterations=TRAINING_ITERATIONS)
        .score_ah(dimensions_per_block=DIMENSIONS_PER_BLOCK)
        .reorder(num_reordering_candidates)
        .build()
    )


class ScannIndex(tfrs.layers.factorized_top_k.TopK):
    """Approximate top-k: ScaNN searching ``num_leaves_to_search`` of ``num_leaves`` partitions
    and re-scoring ``num_reordering_candidates`` candidates exactly.

    ``index(candidates, identifiers)`` trains a searcher; ``index_searcher(searcher,
    identifiers)`` adopts one already trained (by ``train_searcher``, e.g. during tuning).
    Calls map ``queries: [batch, dim]`` to ``(scores, ids)``, each ``[batch, k]``.
    """

    def __init__(
        self,
        k: int,
        num_leaves: int,
        num_leaves_to_search: int,
        num_reordering_candidates: int,
        name: str | None = None,
    ) -> None:
        super().__init__(k=k, name=name)
        self.k = k
        self._num_leaves = num_leaves
        self._num_leaves_to_search = num_leaves_to_search
        self._num_reordering_candidates = num_reordering_candidates
        self._searcher_state: scann_ops.ScannState | None = None
        self._identifiers: tf.Variable | None = None

    def index(self, candidates: tf.Tensor, identifiers: tf.Tensor | None = None) -> "ScannIndex":
        """Trains a searcher over ``candidates: [num_items, dim]``; ``identifiers: [num_items]``."""
        if len(candidates.shape) != 2:
            raise ValueError(f"candidates must be [num_items, dim], got shape {candidates.shape}")
        searcher = train_searcher(candidates, self.k, self._num_leaves, self._num_reordering_candidates)
        return self.index_searcher(searcher, identifiers)

    def index_searcher(
        self, searcher: scann_ops.ScannSearcher, identifiers: tf.Tensor | None = None
    ) -> "ScannIndex":
        """Adopts a trained ``searcher``; ``identifiers: [num_items]`` name its rows (else row numbers).

        Once per layer: a traced call would keep reading the first searcher's variables (TFRS's
        layers reset their ``tf.function`` caches through a private method for that), so
        re-indexing is refused; build a new ``ScannIndex`` instead.
        """
        if self._searcher_state is not None:
            raise ValueError("this ScannIndex is already indexed; create a new ScannIndex to index other items")
        # The searcher's tensors become variables, so a SavedModel carries the whole index.
        self._searcher_state = searcher.serialize_to_module()
        if identifiers is not None:
            self._identifiers = self.add_weight(
                name="identifiers",
                dtype=identifiers.dtype,
                shape=identifiers.shape,
                initializer=tf.keras.initializers.Constant(value=tf.zeros((), dtype=identifiers.dtype)),
                trainable=False,
            )
            self._identifiers.assign(identifiers)
        return self

    @property
    def rescoring_dataset(self) -> tf.Variable | None:
        """The float32 vectors ScaNN re-scores candidates with: for ``dot_product``, the indexed
        ``candidates`` as given, in row order (unnormalised). Its static shape is unknown
        (``validate_shape=False``): reshape to ``[num_items, dim]`` where read. ``None`` before
        indexing."""
        return None if self._searcher_state is None else self._searcher_state.dataset

    def call(self, queries: tf.Tensor, k: int | tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        k = k if k is not None else self.k
        if self._searcher_state is None:
            raise ValueError("ScannIndex: call index() or index_searcher() before querying")
        if len(queries.shape) != 2:
            raise ValueError(f"queries must be [batch, dim], got shape {queries.shape}")
        searcher = scann_ops.searcher_from_module(self._searcher_state)
        result = searcher.search_batched_parallel(
            queries,
            final_num_neighbors=k,
            # Never re-score fewer than asked for (exclusions ask for k + the excluded count).
            pre_reorder_num_neighbors=tf.maximum(k, self._num_reordering_candidates),
            leaves_to_search=self._num_leaves_to_search,
        )
        if self._identifiers is None:
            return result.distances, result.indices
        return result.distances, tf.gather(self._identifiers, result.indices)

    def is_exact(self) -> bool:
        return False
