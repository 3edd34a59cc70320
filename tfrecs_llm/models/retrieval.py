"""The two-tower retrieval model (TFRS)."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrecs_llm.config import TrainConfig
from tfrecs_llm.models.global_batch import global_candidates
from tfrecs_llm.towers import ItemTower, QueryTower
from tfrecs_llm.models.base import Model


def make_retrieval_task(
    config: TrainConfig, candidates: tf.data.Dataset | None = None, ks: tuple[int, ...] = (10, 100)
) -> tfrs.tasks.Retrieval:
    """In-batch softmax retrieval task.

    ``candidates`` (a dataset of ``[batch, embedding_dim]`` item embeddings, recomputed by the
    item tower whenever metrics run) enables ``FactorizedTopK`` metrics at those ``ks``.
    """
    metrics = None
    if candidates is not None:
        metrics = tfrs.metrics.FactorizedTopK(candidates=candidates, ks=ks)
    return tfrs.tasks.Retrieval(
        metrics=metrics,
        temperature=config.temperature,
        remove_accidental_hits=config.remove_accidental_hits,
    )


class TwoTowerModel(Model):
    """User text x item (text + id) retrieval model.

    ``features``: ``user_text`` or ``user_text_embedding`` for the query tower; ``item_id`` and
    ``item_text_embedding`` (or ``item_text``) for the item tower; ``item_probability: [batch]``,
    the item's share of training events, when logQ correction is on.
    """

    def __init__(
        self,
        query_tower: QueryTower,
        item_tower: ItemTower,
        task: tfrs.tasks.Retrieval,
        logq_correction: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.item_tower = item_tower
        self.task = task
        self.logq_correction = logq_correction

    def compute_loss(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query_embeddings = self.query_tower(features, training=training)
        item_embeddings = self.item_tower(features, training=training)
        sampling_probability = None
        if self.logq_correction and "item_probability" in features:
            sampling_probability = features["item_probability"]
        candidate_ids = features["item_id"]
        if training:
            # Under a multi-replica strategy, negatives come from the global batch, as in one
            # process (unchanged with one replica). Evaluation keeps per-replica negatives.
            item_embeddings, candidate_ids, sampling_probability = global_candidates(
                item_embeddings, candidate_ids, sampling_probability
            )
        return self.task(
            query_embeddings,
            item_embeddings,
            candidate_sampling_probability=sampling_probability,
            candidate_ids=candidate_ids,
            compute_metrics=not training,
        )
