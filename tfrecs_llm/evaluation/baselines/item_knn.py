"""Item-kNN: cosine similarity between items' user sets, each item keeping its ``k`` nearest
neighbours; a user's score for an item is the summed similarity to the user's train items.
``k`` is chosen on the validation split carved from the train part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfrecs_llm.evaluation.baselines.histories import (
    ScoreFn,
    interaction_matrix,
    user_sequences,
    validation_ndcg,
    validation_split,
)


@dataclass
class ItemKnnConfig:
    """``neighbours``: the ``k`` values tried on the validation split (the best NDCG@10 wins)."""

    neighbours: list[int] = field(default_factory=lambda: [10, 20, 50, 100, 200, 400])

    def validate(self) -> "ItemKnnConfig":
        if not self.neighbours or any(not isinstance(k, int) or k < 1 for k in self.neighbours):
            raise ValueError(f"item_knn.neighbours must be a non-empty list of integers >= 1, got {self.neighbours!r}")
        return self


def cosine_neighbours(matrix: np.ndarray, k: int) -> np.ndarray:
    """``[num_items, num_items]`` cosine similarities of the item columns of ``matrix``, each
    row keeping its ``k`` largest (an item is not its own neighbour)."""
    norms = np.sqrt(matrix.sum(axis=0)) + 1e-9
    similarity = (matrix.T @ matrix) / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    if k < similarity.shape[1]:
        cut = np.argpartition(-similarity, k, axis=1)[:, k:]
        np.put_along_axis(similarity, cut, 0.0, axis=1)
    return similarity.astype(np.float32)


def _scorer(train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray, k: int) -> ScoreFn:
    matrix, row_of = interaction_matrix(user_sequences(train, catalog_ids), len(catalog_ids))
    similarity = cosine_neighbours(matrix, k)
    empty = np.zeros(len(catalog_ids), np.float32)

    def score(queries: pd.DataFrame) -> np.ndarray:
        users = np.stack([matrix[row_of[u]] if u in row_of else empty for u in queries["user_id"].astype(str)])
        return users @ similarity.T

    return score


def item_knn_scorer(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    config: ItemKnnConfig | None = None,
    verbose: bool = False,
) -> tuple[ScoreFn, dict]:
    """Tunes ``k`` on the validation split, refits on ``train``; returns the score function and
    what was chosen."""
    config = (config or ItemKnnConfig()).validate()
    fit, validation = validation_split(train)
    tried = {k: validation_ndcg(_scorer(fit, catalog_ids, k), catalog_ids, fit, validation) for k in config.neighbours}
    best = max(tried, key=tried.get)
    if verbose:
        print("item_knn: validation NDCG@10 " + ", ".join(f"k {k}: {v:.4f}" for k, v in tried.items()))
    return _scorer(train, catalog_ids, best), {"neighbours": best, "validation_ndcg@10": tried}
