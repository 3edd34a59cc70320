"""tfrs.Model subclasses: they compose towers and a task and write ``compute_loss`` only."""

from tfrecs_llm.models.retrieval import TwoTowerModel

__all__ = ["TwoTowerModel"]
