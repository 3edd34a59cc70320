"""The ranker learns from lists whose queries look like serving-time queries: the user's text
and recent items as of just before the event, not an empty history."""

from __future__ import annotations

import numpy as np

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.training.ranker import training_lists


def test_ranker_lists_query_each_user_as_of_just_before_the_event() -> None:
    items = validate_items(tiny_items())
    events = validate_interactions(tiny_interactions(num_users=12), items)
    retrieval_train, ranker_events = leave_last_out(events)
    config = Config().with_overrides({"train.epochs": 1, "encoder.sequence_length": 32,
                                     "ranking.num_candidates": 5})
    model = Recommender.train(items, retrieval_train, config, encoder=make_tiny_encoder(), verbose=False)

    lists = training_lists(model, ranker_events, config.ranking, history=retrieval_train)

    order = ranker_events.sort_values("timestamp", kind="stable").index  # one event per user
    texts = model.builder.for_events(events).loc[order].tolist()
    assert all(texts)  # every user has a history here
    expected = model.query_embeddings(texts)
    assert 1 <= len(lists["labels"]) <= len(order)  # lists whose positive was retrieved
    for query in lists["query_embedding"]:  # each list's query is one of those users as of then
        assert np.abs(expected - query).max(axis=1).min() < 1e-5
    assert (lists["labels"].sum(axis=1) == 1).all()
    # The user's earlier items are never candidates (as at serving time, where they are excluded).
    seen = retrieval_train.groupby("user_id")["item_id"].agg(set)
    rows = model.catalog.row_index()
    users = ranker_events.loc[order, "user_id"].to_numpy()
    for query, candidates in zip(lists["query_embedding"], lists["candidate_rows"]):
        user = users[np.abs(expected - query).max(axis=1).argmin()]
        assert not set(rows.reindex(list(seen[user])).to_numpy(int)) & set(candidates.tolist())
    # Without the history every query would be a user with no past, the ranker's old bug.
    alone = training_lists(model, ranker_events, config.ranking)
    for query in alone["query_embedding"]:
        assert np.abs(expected - query).max(axis=1).min() > 1e-3
