"""Tables are validated once, at the edge: a validated table handed on is not validated again.

The full validation of a table (cell by cell, with timestamp parsing) is what costs; the stamp
``validate_*`` leave on their result lets every later entry point skip it, while a table that
changed shape or was assembled anew is validated in full.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.data import schema
from tfrecs_llm.data.schema import SchemaError, is_validated, validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.recommender import Recommender


@pytest.fixture
def full_validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Appends "items" / "interactions" each time a table is validated in full."""
    calls: list[str] = []
    original = schema._text_column

    def counting(df, column, source, problems, *, required):
        if column == "item_id":
            calls.append("interactions" if "user_id" in df.columns else "items")
        return original(df, column, source, problems, required=required)

    monkeypatch.setattr(schema, "_text_column", counting)
    return calls


def test_training_and_evaluating_validates_each_table_once(full_validations: list[str]) -> None:
    # What `tfrecs-llm train` does: load and validate, split, train, rank, evaluate.
    items = validate_items(tiny_items())
    events = validate_interactions(tiny_interactions(num_users=30), items)
    assert full_validations == ["items", "interactions"]
    train, test = leave_last_out(events)
    retrieval_train, ranker_events = leave_last_out(train)
    config = Config().with_overrides({"train.epochs": 1, "encoder.sequence_length": 32, "ranking.epochs": 1,
                                     "ranking.num_candidates": 10})
    model = Recommender.train(items, retrieval_train, config, encoder=make_tiny_encoder(), verbose=False)
    model.train_ranker(ranker_events, verbose=False, history=retrieval_train)
    model.evaluate(train, test)
    model.evaluate_ranking(train, test)
    model.user_texts(["u1"], events)
    assert full_validations == ["items", "interactions"]


def test_stamped_tables_are_still_checked_against_the_catalog() -> None:
    items = validate_items(tiny_items())
    events = validate_interactions(tiny_interactions(num_users=3), items)
    fewer_items = validate_items(tiny_items().iloc[:5])
    with pytest.raises(SchemaError, match="value.? not in the item catalog"):
        validate_interactions(events, fewer_items)


def test_changed_or_new_tables_are_validated_in_full(full_validations: list[str]) -> None:
    items = validate_items(tiny_items())
    events = validate_interactions(tiny_interactions(num_users=3), items)
    full_validations.clear()
    retyped = events.copy()
    retyped["timestamp"] = retyped["timestamp"].astype("int64") // 10**9  # unix seconds again
    assert not is_validated(retyped, "interactions")
    again = validate_interactions(retyped, items)
    assert isinstance(again["timestamp"].dtype, pd.DatetimeTZDtype)
    mixed = pd.concat([events, tiny_interactions(num_users=1)], ignore_index=True)
    assert not is_validated(mixed, "interactions")
    validate_interactions(mixed, items)
    assert full_validations == ["interactions", "interactions"]
    # A subset or a reordering of a validated table is still a validated table.
    assert is_validated(events.sort_values("timestamp").head(5), "interactions")
