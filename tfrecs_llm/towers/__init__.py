"""Query and item towers of the two-tower retrieval model."""

from tfrecs_llm.towers.item import ItemTower
from tfrecs_llm.towers.query import QueryTower

__all__ = ["ItemTower", "QueryTower"]
