"""The held-out protocol: per-query metrics, exclusions, ties, the cold-start slice, bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.evaluation.protocol import QUERY_COLUMNS, HeldOutSet, beyond_accuracy, per_query_metrics, rank_held_out
from tfrecs_llm.metrics import ranking_metrics
from tfrecs_llm.metrics.bootstrap import bootstrap_intervals


def test_per_query_metrics_by_hand() -> None:
    values = per_query_metrics(np.array([0, 1, 4, 150]), ks=(10, 100))
    assert list(values) == ["recall@10", "recall@100", "ndcg@10", "ndcg@100", "mrr"]
    np.testing.assert_allclose(values["recall@10"], [1, 1, 1, 0])
    np.testing.assert_allclose(values["recall@100"], [1, 1, 1, 0])
    # NDCG = 1 / log2(rank + 2): 1, 1/log2(3) = 0.6309, 1/log2(6) = 0.3869, 0.
    np.testing.assert_allclose(values["ndcg@10"], [1.0, 0.63093, 0.38685, 0.0], atol=1e-5)
    np.testing.assert_allclose(values["mrr"], [1.0, 0.5, 0.2, 1 / 151])
    means = ranking_metrics(np.array([0, 1, 4, 150]), ks=(10, 100))
    assert means == pytest.approx({name: v.mean() for name, v in values.items()})


@pytest.fixture
def held_out() -> HeldOutSet:
    """u1 saw a, b and is tested on c; u2 saw c and is tested on e, which nobody trained on."""
    items = validate_items(pd.DataFrame({
        "item_id": list("abcde"),
        "title": ["alpha", "bravo", "charlie", "delta", "echo"],
        "description": [""] * 5,
    }))
    events = validate_interactions(pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u1", "u2"],
        "item_id": ["a", "b", "c", "c", "e"],
        "timestamp": [1, 2, 1, 3, 2],
    }), items)
    train, test = events.iloc[:3], events.iloc[3:]
    builder = UserTextBuilder(dict(zip(items["item_id"], items["title"])))
    return HeldOutSet.build(builder, items["item_id"].to_numpy(), train, test)


def test_held_out_queries_carry_history_text_exclusions_and_the_cold_slice(held_out) -> None:
    queries = held_out.queries
    assert queries["user_text"].tolist() == ["bravo ; alpha", "charlie"]
    assert [sorted(rows.tolist()) for rows in held_out.excluded_rows] == [[0, 1], [2]]
    assert held_out.target_rows.tolist() == [2, 4]
    assert held_out.cold_start.tolist() == [False, True]


def test_ranks_exclude_history_and_count_ties_against_the_target(held_out) -> None:
    seen_columns = []

    def score(queries: pd.DataFrame) -> np.ndarray:
        seen_columns.append(list(queries.columns))
        rows = {"u1": [5, 4, 3, 3, 1], "u2": [5, 4, 3, 2, 1]}
        return np.array([rows[u] for u in queries["user_id"]], dtype=float)

    ranks, top = rank_held_out(score, held_out, top_k=2)
    # u1: a, b excluded; c (target) ties with d -> rank 1. u2: c excluded; a, b, d above e -> 3.
    assert ranks.tolist() == [1, 3]
    assert set(top[0].tolist()) == {2, 3} and top[1].tolist() == [0, 1]
    assert seen_columns == [list(QUERY_COLUMNS)], "a scorer must never see the held-out item"


def test_a_scorer_with_the_wrong_shape_is_named(held_out) -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 4\), expected \[2 queries, 5 catalog items\]"):
        rank_held_out(lambda queries: np.zeros((len(queries), 4)), held_out, top_k=2)


def test_list_metrics_by_hand() -> None:
    top = np.array([[0, 1], [0, 2]])
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    result = beyond_accuracy(top, 4, embeddings, ["x", "x", "y", "y"])
    # 3 of 4 items recommended; cosine distances 0 and 1; entropies 0 and ln 2.
    assert result == pytest.approx(
        {"catalog_coverage@2": 0.75, "ild@2": 0.5, "category_entropy@2": np.log(2) / 2}
    )
    assert set(beyond_accuracy(top, 4, None, ["", "", "", ""])) == {"catalog_coverage@2"}


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_queries() -> None:
    rng = np.random.default_rng(7)
    widths = []
    for n in (50, 5000):
        hits = rng.binomial(1, 0.3, n).astype(float)
        low, high = bootstrap_intervals({"recall@10": hits}, num_resamples=1000, seed=0)["recall@10"]
        assert low <= hits.mean() <= high
        widths.append(high - low)
    # The width falls like 1 / sqrt(n): 10x narrower for 100x the queries.
    assert widths[1] < widths[0] / 5


def test_bootstrap_is_seeded_and_checks_its_arguments() -> None:
    values = {"mrr": np.linspace(0, 1, 40), "recall@10": np.arange(40) % 2}
    first = bootstrap_intervals(values, num_resamples=200, seed=3)
    assert first == bootstrap_intervals(values, num_resamples=200, seed=3)
    assert first != bootstrap_intervals(values, num_resamples=200, seed=4)
    with pytest.raises(ValueError, match="confidence must be strictly between 0 and 1"):
        bootstrap_intervals(values, confidence=95)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_intervals({"mrr": np.array([])})
