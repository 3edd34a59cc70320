"""EASE (Steck, 2019): a closed-form item-item model, the strong linear baseline.

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1``, ``X`` the users x items
0/1 train matrix; a user's scores are ``x_u B`` (``diag(B) = 0``, so an item never recommends
itself). ``lambda`` is chosen on a validation split carved from the train part (each user's
last train event), then the model is refit on the whole train part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfrecs_llm.evaluation.baselines.histories import ScoreFn, item_item_scorer, tune_on_validation


@dataclass
class EaseConfig:
    """``lambdas``: the L2 weights tried on the validation split (the best NDCG@10 wins)."""

    lambdas: list[float] = field(default_factory=lambda: [50.0, 100.0, 200.0, 350.0, 500.0, 750.0, 1000.0, 2000.0])

    def validate(self) -> "EaseConfig":
        if not self.lambdas or any(not value > 0 for value in self.lambdas):
            raise ValueError(f"ease.lambdas must be a non-empty list of numbers > 0, got {self.lambdas!r}")
        return self


def ease_weights(matrix: np.ndarray, lambda_: float) -> np.ndarray:
    """``[num_items, num_items]`` EASE weights of the users x items ``matrix``."""
    gram = (matrix.T @ matrix).astype(np.float64)
    gram[np.diag_indices_from(gram)] += lambda_
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def ease_scorer(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    config: EaseConfig | None = None,
    verbose: bool = False,
) -> tuple[ScoreFn, dict]:
    """Tunes ``lambda`` on the validation split, refits on ``train``; returns the score function
    (queries ``[n]`` rows, ``user_id`` -> ``[n, num_items]``) and what was chosen."""
    config = (config or EaseConfig()).validate()

    def build(events: pd.DataFrame, lambda_: float) -> ScoreFn:
        return item_item_scorer(events, catalog_ids, lambda matrix: ease_weights(matrix, lambda_))

    best, tried = tune_on_validation(train, catalog_ids, config.lambdas, build)
    if verbose:
        print("ease: validation NDCG@10 " + ", ".join(f"lambda {k:g}: {v:.4f}" for k, v in tried.items()))
    return build(train, best), {"lambda": best, "validation_ndcg@10": tried}
