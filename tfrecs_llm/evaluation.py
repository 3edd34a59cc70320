"""Offline evaluation: held-out events ranked against the full catalog, history excluded."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.metrics import exclude_items, ranking_metrics, target_ranks

ScoreFn = Callable[[list[str]], np.ndarray]
"""Maps user texts ``[num_queries]`` to scores over the catalog ``[num_queries, num_items]``."""


def held_out_queries(
    builder: UserTextBuilder, row_of: pd.Series, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """What each test event is evaluated with: its user text as of just before it, the catalog
    rows of the user's train items (to exclude) and the target row.

    Returns ``(texts [n], excluded_rows [n] arrays, target_rows [n])``; ``row_of`` maps item id
    to catalog row.
    """
    # Positional, not by index: train and test read from separate files share index labels.
    combined = pd.concat([train, test], ignore_index=True)
    texts = builder.for_events(combined).iloc[len(train) :].tolist()
    targets = row_of.reindex(test["item_id"].astype(str)).to_numpy()
    if np.isnan(targets.astype(float)).any():
        raise ValueError("test events reference items missing from the catalog")
    seen = train.groupby("user_id")["item_id"].agg(list)
    excluded = [row_of.reindex(seen.get(user, [])).dropna().to_numpy(dtype=int) for user in test["user_id"]]
    return texts, excluded, targets.astype(int)


def evaluate_scores(
    score_fn: ScoreFn,
    catalog_ids: np.ndarray,
    train: pd.DataFrame,
    test: pd.DataFrame,
    builder: UserTextBuilder,
    ks: Sequence[int] = (10, 100),
    batch_size: int = 512,
) -> dict[str, float]:
    """Ranks every test event's item among all catalog items, excluding the user's train items.

    The user text of a test event is built from the train events strictly before it (plus the
    event's own free text), exactly as at serving time.
    """
    row_of = pd.Series(np.arange(len(catalog_ids)), index=np.asarray(catalog_ids, dtype=str))
    texts, history, targets = held_out_queries(builder, row_of, train, test)
    ranks = []
    for start in range(0, len(test), batch_size):
        stop = start + batch_size
        scores = exclude_items(score_fn(texts[start:stop]), history[start:stop])
        ranks.append(target_ranks(scores, targets[start:stop]))
    metrics = ranking_metrics(np.concatenate(ranks), ks)
    metrics["num_queries"] = float(len(test))
    return metrics


def popularity_scorer(train: pd.DataFrame, catalog_ids: np.ndarray) -> ScoreFn:
    """Scores every item by its number of training events (the popularity baseline)."""
    counts = train["item_id"].astype(str).value_counts()
    popularity = counts.reindex(np.asarray(catalog_ids, dtype=str)).fillna(0).to_numpy(float)
    # A tiny id-order tie-break keeps the ranking deterministic among equally popular items.
    popularity = popularity - np.arange(len(popularity)) * 1e-9
    return lambda texts: np.tile(popularity, (len(texts), 1))
