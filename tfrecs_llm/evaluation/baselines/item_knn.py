"""Item-kNN: cosine similarity between items' user sets, each item keeping its ``k`` nearest
neighbours; a user's score for an item is the summed similarity to the user's train items.
``k`` is chosen on the validation split carved from the train part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfrecs_llm.evaluation.baselines.histories import ScoreFn, item_item_scorer, tune_on_validation


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


def item_knn_scorer(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    config: ItemKnnConfig | None = None,
    verbose: bool = False,
) -> tuple[ScoreFn, dict]:
    """Tunes ``k`` on the validation split, refits on ``train``; returns the score function and
    what was chosen."""
    config = (config or ItemKnnConfig()).validate()

    def build(events: pd.DataFrame, k: int) -> ScoreFn:
        return item_item_scorer(events, catalog_ids, lambda matrix: cosine_neighbours(matrix, k).T)

    best, tried = tune_on_validation(train, catalog_ids, config.neighbours, build)
    if verbose:
        print("item_knn: validation NDCG@10 " + ", ".join(f"k {k}: {v:.4f}" for k, v in tried.items()))
    return build(train, best), {"neighbours": best, "validation_ndcg@10": tried}
