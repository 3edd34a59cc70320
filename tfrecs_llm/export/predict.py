"""Querying an exported SavedModel version in-process (what TF Serving does, without a server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops of the tokenizer graph)

from tfrecs_llm.export.layout import versions


def _load_ops_for(export_dir: Path) -> None:
    card = export_dir / "assets.extra" / "model_card.json"
    if card.is_file() and json.loads(card.read_text()).get("index", {}).get("kind") == "scann":
        import scann  # noqa: F401  (registers the ScaNN ops)


def resolve_version_dir(path: str | Path) -> Path:
    """A version folder as given, or the highest version inside a ``<base>/<name>`` folder."""
    path = Path(path)
    found = versions(path)
    if not (path / "saved_model.pb").is_file() and found:
        return path / str(found[-1])
    return path


def export_titles(path: str | Path) -> dict[str, str]:
    """item id -> title from an export's ``assets.extra/items.csv`` (empty if it has none)."""
    catalog = resolve_version_dir(path) / "assets.extra" / "items.csv"
    if not catalog.is_file():
        return {}
    import pandas as pd

    items = pd.read_csv(catalog, dtype=str, keep_default_na=False)
    return dict(zip(items["item_id"], items["title"]))


def predict_saved_model(
    export_dir: str | Path,
    user_texts: Sequence[str],
    exclude_item_ids: Sequence[Sequence[str]] | None = None,
    k: int | None = None,
) -> list[list[tuple[str, float]]]:
    """Runs ``serving_default`` (or ``recommend_with_exclusions``) of an export on ``user_texts``.

    Returns per text ``(item_id, score)`` pairs, best first; ``k`` may only shorten the list the
    export was built with.
    """
    export_dir = resolve_version_dir(export_dir)
    if not (export_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(
            f"{export_dir} holds no saved_model.pb; expected a version folder such as saved_models/demo/1"
        )
    _load_ops_for(export_dir)
    loaded = tf.saved_model.load(str(export_dir))
    texts = tf.constant(list(user_texts), tf.string)
    if exclude_item_ids and any(len(e) for e in exclude_item_ids):
        width = max(len(e) for e in exclude_item_ids)
        padded = tf.constant([list(e) + [""] * (width - len(e)) for e in exclude_item_ids])
        outputs = loaded.signatures["recommend_with_exclusions"](user_text=texts, exclude_item_ids=padded)
    else:
        outputs = loaded.signatures["serving_default"](user_text=texts)
    ids, scores = outputs["item_ids"].numpy(), outputs["scores"].numpy()
    if k is not None:
        if k < 1 or k > ids.shape[1]:
            raise ValueError(f"k must be between 1 and {ids.shape[1]} (what this export returns), got {k}")
        ids, scores = ids[:, :k], scores[:, :k]
    return [
        [(i.decode(), float(s)) for i, s in zip(row_ids, row_scores)]
        for row_ids, row_scores in zip(ids, scores)
    ]
