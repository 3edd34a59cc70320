"""What the collaborative baselines read of the train events: each user's items, in time order,
and a validation split carved from the train part to tune them on (never the test events)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.evaluation.protocol import HeldOutSet, per_query_metrics, rank_held_out

ScoreFn = Callable[[pd.DataFrame], np.ndarray]


def user_sequences(train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray) -> dict[str, np.ndarray]:
    """user id -> catalog rows of the user's train events, oldest first (ties in file order);
    events on items outside the catalog are skipped."""
    row_of = pd.Series(np.arange(len(catalog_ids)), index=np.asarray(catalog_ids, dtype=str))
    ordered = train.assign(_position=np.arange(len(train))).sort_values(["timestamp", "_position"], kind="stable")
    rows = row_of.reindex(ordered["item_id"].astype(str)).to_numpy()
    known = ~np.isnan(rows.astype(float))
    users = ordered["user_id"].astype(str).to_numpy()[known]
    rows = rows[known].astype(np.int64)
    return {user: rows[index] for user, index in pd.Series(np.arange(len(users))).groupby(users).indices.items()}


def interaction_matrix(sequences: dict[str, np.ndarray], num_items: int) -> tuple[np.ndarray, dict[str, int]]:
    """``[num_users, num_items]`` 0/1 float32 matrix of who interacted with what, and the row
    of each user."""
    users = sorted(sequences)
    matrix = np.zeros((len(users), num_items), np.float32)
    for row, user in enumerate(users):
        matrix[row, sequences[user]] = 1.0
    return matrix, {user: row for row, user in enumerate(users)}


def validation_split(train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(fit, validation)``: each user's last train event held out, as the test split holds
    out the last event overall, so hyper-parameters are chosen on the train part only."""
    fit, validation = leave_last_out(train)
    if validation.empty:
        raise ValueError("tuning needs users with two or more train events; no user has them")
    return fit, validation


def validation_ndcg(
    score_fn: ScoreFn, catalog_ids: Sequence[str] | np.ndarray, fit: pd.DataFrame, validation: pd.DataFrame
) -> float:
    """Mean NDCG@10 of ``score_fn`` on the validation events under the evaluation protocol
    (full catalog, the user's fit items excluded)."""
    held_out = HeldOutSet.build(UserTextBuilder({}), catalog_ids, fit, validation)
    ranks, _ = rank_held_out(score_fn, held_out, top_k=1)
    return float(per_query_metrics(ranks, (10,))["ndcg@10"].mean())


def item_item_scorer(
    train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray, weights: Callable[[np.ndarray], np.ndarray]
) -> ScoreFn:
    """Scores ``x_u W`` with ``x_u`` the user's 0/1 train row and ``W = weights(X)`` an
    ``[num_items, num_items]`` item-item matrix of the users x items train matrix ``X``."""
    matrix, row_of = interaction_matrix(user_sequences(train, catalog_ids), len(catalog_ids))
    item_item = weights(matrix)
    empty = np.zeros(len(catalog_ids), np.float32)

    def score(queries: pd.DataFrame) -> np.ndarray:
        users = np.stack([matrix[row_of[u]] if u in row_of else empty for u in queries["user_id"].astype(str)])
        return users @ item_item

    return score


def tune_on_validation(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    grid: Sequence,
    build: Callable[[pd.DataFrame, object], ScoreFn],
) -> tuple[object, dict]:
    """The ``grid`` value whose ``build(fit, value)`` scores best (NDCG@10) on the validation
    split, and the NDCG@10 of every value."""
    fit, validation = validation_split(train)
    tried = {value: validation_ndcg(build(fit, value), catalog_ids, fit, validation) for value in grid}
    return max(tried, key=tried.get), tried
