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
