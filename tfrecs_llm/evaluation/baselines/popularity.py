"""Popularity baseline: every user gets the items with the most training events."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd


def item_popularity(train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """``[num_items]`` training-event counts per catalog item (0 for items without events)."""
    counts = train["item_id"].astype(str).value_counts()
    return counts.reindex(np.asarray(catalog_ids, dtype=str)).fillna(0).to_numpy(np.float64)


def popularity_scorer(
    train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Scores every item by its number of training events, the same for every query.

    Returns a score function: queries ``[num_queries]`` rows -> ``[num_queries, num_items]``.
    """
    popularity = item_popularity(train, catalog_ids)
    # A tiny id-order tie-break keeps the ranking deterministic among equally popular items.
    popularity = popularity - np.arange(len(popularity)) * 1e-9
    return lambda queries: np.tile(popularity, (len(queries), 1))
