"""Querying an exported SavedModel version in-process (what TF Serving does, without a server)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tfrecs_llm.export.loaded import LoadedExport, export_titles, resolve_version_dir

__all__ = ["export_titles", "predict_saved_model", "resolve_version_dir"]


def predict_saved_model(
    export_dir: str | Path,
    user_texts: Sequence[str],
    exclude_item_ids: Sequence[Sequence[str]] | None = None,
    k: int | None = None,
) -> list[list[tuple[str, float]]]:
    """Runs an export on ``user_texts`` (excluding ``exclude_item_ids``): per text ``(item_id,
    score)`` pairs, best first; ``k`` may only shorten the list the export was built with."""
    loaded = LoadedExport(export_dir)
    return [[(r["item_id"], r["score"]) for r in row] for row in loaded.recommend(user_texts, k, exclude_item_ids)]
