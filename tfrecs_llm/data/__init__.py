"""Pandas data layer: validated tables, user texts and train/test splits (no TensorFlow)."""

from tfrecs_llm.data.schema import (
    SchemaError,
    load_interactions,
    load_items,
    require_validated_interactions,
    validate_interactions,
    validate_items,
)
from tfrecs_llm.data.splits import global_time_split, history_items, leave_last_out
from tfrecs_llm.data.user_text import UserTextBuilder

__all__ = [
    "SchemaError",
    "UserTextBuilder",
    "global_time_split",
    "history_items",
    "leave_last_out",
    "load_interactions",
    "load_items",
    "require_validated_interactions",
    "validate_interactions",
    "validate_items",
]
