"""EASE and item-kNN by hand, and their tuning on the train part only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.tiny_data import tiny_split
from tfrecs_llm.evaluation.baselines.ease import EaseConfig, ease_scorer, ease_weights
from tfrecs_llm.evaluation.baselines.item_knn import cosine_neighbours, item_knn_scorer


def test_ease_weights_by_hand() -> None:
    # Items 1 and 2: 3 users each, 2 users both. G = X^T X = [[3, 2], [2, 3]]; with lambda 1,
    # P = inv([[4, 2], [2, 4]]) = [[4, -2], [-2, 4]] / 12, B_ij = -P_ij / P_jj = 2 / 4.
    matrix = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], np.float32)
    np.testing.assert_allclose(ease_weights(matrix, 1.0), [[0.0, 0.5], [0.5, 0.0]], atol=1e-6)


def test_cosine_neighbours_by_hand() -> None:
    # Item 0 users {0, 1}, item 1 {0}, item 2 {1, 2}: cos(0, 1) = 1/sqrt(2), cos(0, 2) = 1/2.
    matrix = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], np.float32)
    full = cosine_neighbours(matrix, k=3)
    np.testing.assert_allclose(full[0], [0.0, 1 / np.sqrt(2), 0.5], atol=1e-5)
    np.testing.assert_allclose(cosine_neighbours(matrix, k=1)[0], [0.0, 1 / np.sqrt(2), 0.0], atol=1e-5)


@pytest.mark.parametrize("fit", [ease_scorer, item_knn_scorer])
def test_tuned_baselines_find_the_users_topic_and_report_their_choice(fit) -> None:
    items, train, test = tiny_split()
    ids = items["item_id"].to_numpy(str)
    score, chosen = fit(train, ids)
    queries = pd.DataFrame({"user_id": test["user_id"].astype(str).to_numpy()})
    scores = score(queries)
    targets = pd.Series(np.arange(len(ids)), index=ids)[test["item_id"].astype(str)].to_numpy()
    in_topic = np.mean([ids[np.argmax(row)].split("-")[0] == ids[t].split("-")[0] for row, t in zip(scores, targets)])
    assert in_topic >= 0.9  # three topics of users: the collaborative signal finds the user's topic
    curve = chosen["validation_ndcg@10"]
    assert curve[chosen.get("lambda", chosen.get("neighbours"))] == max(curve.values())


def test_bad_grids_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="ease.lambdas must be a non-empty list of numbers > 0"):
        EaseConfig(lambdas=[0.0]).validate()
