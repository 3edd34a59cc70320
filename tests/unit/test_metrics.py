"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfrecs_llm.metrics import exclude_items, ranking_metrics, target_ranks


def test_ranks_with_exclusions_and_ties() -> None:
    # Scores: q0 = [0.9, 0.5, 0.7, 0.1] target item 2 -> item 0 above it -> rank 1.
    #         q1 = [0.3, 0.3, 0.3, 0.3] target item 1 -> ties count against -> rank 3.
    #         q2 = [0.9, 0.8, 0.1, 0.2] target item 3, items 0 and 1 excluded -> rank 0.
    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.3] * 4, [0.9, 0.8, 0.1, 0.2]])
    scores = exclude_items(scores, [[], [], [0, 1]])
    np.testing.assert_array_equal(target_ranks(scores, np.array([2, 1, 3])), [1, 3, 0])


def test_ranking_metrics_by_hand() -> None:
    # Ranks 0, 1, 3 with k=2: hits 2/3; NDCG = (1 + 1/log2(3) + 0) / 3; MRR = (1 + 1/2 + 1/4) / 3.
    metrics = ranking_metrics(np.array([0, 1, 3]), ks=(2,))
    assert metrics["recall@2"] == pytest.approx(2 / 3)
    assert metrics["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0.25) / 3)


def test_no_queries_is_an_error() -> None:
    with pytest.raises(ValueError, match="no queries"):
        ranking_metrics(np.array([]))
