"""Ranking losses as functions of tensors: relevance, entropy diversity, their combination."""

from tfrecs_llm.losses.diversity import (
    category_one_hot,
    entropy_diversity_loss,
    fit_topic_centroids,
    soft_topic_assignments,
)
from tfrecs_llm.losses.relevance import (
    RELEVANCE_LOSSES,
    ListwiseSoftmaxLoss,
    PairwiseLogisticLoss,
    combined_loss,
    relevance_loss,
)

__all__ = [
    "RELEVANCE_LOSSES",
    "ListwiseSoftmaxLoss",
    "PairwiseLogisticLoss",
    "category_one_hot",
    "combined_loss",
    "entropy_diversity_loss",
    "fit_topic_centroids",
    "relevance_loss",
    "soft_topic_assignments",
]
