"""The base of this package's TFRS models: logs that list only what is there."""

from __future__ import annotations

from typing import Any

import tensorflow_recommenders as tfrs


class Model(tfrs.Model):
    """``tfrs.Model`` without always-zero log entries: TFRS reports ``regularization_loss`` and
    ``total_loss`` every step; a model without regularization losses has 0 and ``loss`` there,
    so both are left out of its logs (and history). Subclasses write ``compute_loss`` only."""

    def train_step(self, inputs: Any) -> dict[str, Any]:
        return self._shown(super().train_step(inputs))

    def test_step(self, inputs: Any) -> dict[str, Any]:
        return self._shown(super().test_step(inputs))

    def _shown(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if not self.losses:  # known when the step is traced
            metrics.pop("regularization_loss", None)
            metrics.pop("total_loss", None)
        return metrics
