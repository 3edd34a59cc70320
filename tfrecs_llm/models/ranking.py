"""The ranking head (TFRS): re-orders retrieved candidates with relevance + entropy diversity."""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs_llm.config import RankingConfig
from tfrecs_llm.losses import combined_loss, entropy_diversity_loss, relevance_loss
from tfrecs_llm.metrics.keras_metrics import CategoryEntropyAtK, NDCGAtK
from tfrecs_llm.models.base import Model


class RankingModel(Model):
    """Listwise ranker trained with ``L = L_rel + lambda_div * L_div``.

    ``features``: ``query_embedding [batch, d]``, ``candidate_rows [batch, list]``,
    ``retrieval_score [batch, list]`` and ``labels [batch, list]`` (1 for the positive).
    ``lambda_div = 0`` is plain relevance ranking. The diversity softmax reads per-list
    standardised scores, so only the order of a list, not its score scale, can raise diversity.

    ``scorer``: a layer mapping those features to ``[batch, list]`` scores and holding the
    catalog's ``item_topics: [num_items, num_topics]`` (``tfrecs_llm.ranking.scorer.CandidateScorer``).
    """

    def __init__(self, scorer: tf_keras.layers.Layer, config: RankingConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config.validate()
        self.scorer = scorer
        self.lambda_div = config.lambda_div
        self.tau = config.tau
        self.task = tfrs.tasks.Ranking(
            loss=relevance_loss(config.relevance_loss),
            metrics=[NDCGAtK(10, name="ndcg_at_10")],
        )
        self.entropy_at_10 = CategoryEntropyAtK(10, name="category_entropy_at_10")

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return self.scorer(features)

    def compute_loss(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        scores = self.scorer(features)
        relevance = self.task(labels=features["labels"], predictions=scores)
        topics = tf.gather(self.scorer.item_topics, features["candidate_rows"])
        self.entropy_at_10.update_state(scores, topics)  # reported every epoch, whatever lambda_div
        if self.lambda_div == 0:
            return relevance
        # Standardised per list: otherwise the loss falls by merely shrinking the score scale
        # (a flatter softmax), which leaves the order - and so the top k - unchanged.
        mean, variance = tf.nn.moments(scores, axes=[1], keepdims=True)
        standardized = (scores - mean) / tf.sqrt(variance + 1e-6)
        diversity = tf.reduce_mean(entropy_diversity_loss(standardized, topics, tau=self.tau))
        return combined_loss(relevance, diversity, self.lambda_div)
