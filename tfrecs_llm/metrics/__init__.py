"""Offline metrics as functions of arrays."""

from tfrecs_llm.metrics.retrieval import exclude_items, ranking_metrics, target_ranks

__all__ = ["exclude_items", "ranking_metrics", "target_ranks"]
