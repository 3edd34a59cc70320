"""An exported version in Python: ``tfrecs_llm.load_export(path)``.

A plain ``tf.saved_model.load`` of an export fails with ``Op type not registered
'NormalizeUTF8'`` (or ``'Scann>TensorsToScann'``): the tokenizer runs TF Text ops in the graph,
and a ScaNN index runs ScaNN's, and neither library registers them until it is imported.
``load_export`` imports what the model card says the export needs, then loads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfrecs_llm.export.layout import versions

OPS_HINT = (
    "this SavedModel runs TF Text ops (its tokenizer) and, for a ScaNN index, ScaNN's: "
    "`import tensorflow_text` (and `import scann` for a scann export) before tf.saved_model.load, "
    "or load it with tfrecs_llm.load_export(path), which does both"
)


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


def register_ops(model_card: dict[str, Any]) -> None:
    """Imports the op libraries an export with this model card needs (TF Text always)."""
    import tensorflow_text  # noqa: F401  (registers the TF Text ops of the tokenizer graph)

    if model_card.get("index", {}).get("kind") == "scann":
        import scann  # noqa: F401  (registers the ScaNN ops)


def is_missing_op_error(error: BaseException) -> bool:
    """Whether ``error`` is TensorFlow's "Op type not registered" (an op library not imported)."""
    return isinstance(error, (tf.errors.NotFoundError, ValueError, KeyError)) and "Op type not registered" in str(error)


class LoadedExport:
    """One exported version, loaded: its signatures, model card and catalog titles.

    Example::

        import tfrecs_llm
        model = tfrecs_llm.load_export("saved_models/demo")        # its latest version
        model.recommend(["I love jazz records"])[0][:2]
        # [{'item_id': 'i0457', 'score': 8.7, 'reason': 'mentions jazz', 'title': '...'}, ...]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = resolve_version_dir(path)
        if not (self.path / "saved_model.pb").is_file():
            raise FileNotFoundError(
                f"{self.path} holds no saved_model.pb; expected a version folder such as saved_models/demo/1 "
                "or a model folder holding version folders"
            )
        card = self.path / "assets.extra" / "model_card.json"
        self.model_card: dict[str, Any] = json.loads(card.read_text()) if card.is_file() else {}
        register_ops(self.model_card)
        self._saved_model = tf.saved_model.load(str(self.path))  # owns the variables signatures use
        self.signatures = dict(self._saved_model.signatures)
        self.titles = export_titles(self.path)

    def run(
        self,
        user_texts: Sequence[str],
        exclude_item_ids: Sequence[Sequence[str]] | None = None,
        history_item_ids: Sequence[Sequence[str]] | None = None,
        diversity: float = 0.0,
    ) -> dict[str, np.ndarray]:
        """The raw outputs (``item_ids``, ``scores``, ``reasons``: ``[batch, k]``) of the
        ``recommend`` signature (or ``serving_default`` for exports without it)."""
        if isinstance(user_texts, str):
            raise TypeError("user_texts must be a list of strings, got a single string")
        texts = tf.constant(list(user_texts), tf.string)
        if "recommend" not in self.signatures:
            if exclude_item_ids or history_item_ids:
                raise ValueError(f"{self.path} has no 'recommend' signature; re-export it to pass exclusions or history")
            outputs = self.signatures["serving_default"](user_text=texts)
        else:
            outputs = self.signatures["recommend"](
                user_text=texts,
                exclude_item_ids=_padded(exclude_item_ids, len(user_texts), "exclude_item_ids"),
                history_item_ids=_padded(history_item_ids, len(user_texts), "history_item_ids"),
                diversity=tf.fill([len(user_texts)], float(diversity)),
            )
        return {name: value.numpy() for name, value in outputs.items()}

    def recommend(
        self,
        user_texts: Sequence[str],
        k: int | None = None,
        exclude_item_ids: Sequence[Sequence[str]] | None = None,
        history_item_ids: Sequence[Sequence[str]] | None = None,
        diversity: float = 0.0,
    ) -> list[list[dict[str, Any]]]:
        """Per user text, ``{item_id, score, reason, title}`` dicts, best first; ``k`` may only
        shorten the list the export was built with. Excluded fillers (score -inf) are dropped."""
        outputs = self.run(user_texts, exclude_item_ids, history_item_ids, diversity)
        ids, scores = outputs["item_ids"], outputs["scores"]
        reasons = outputs.get("reasons", np.full(ids.shape, b"", dtype=object))
        if k is not None:
            if not 1 <= k <= ids.shape[1]:
                raise ValueError(f"k must be between 1 and {ids.shape[1]} (what this export returns), got {k}")
            ids, scores, reasons = ids[:, :k], scores[:, :k], reasons[:, :k]
        return [
            [{"item_id": i.decode(), "score": float(s), "reason": r.decode(), "title": self.titles.get(i.decode(), "")}
             for i, s, r in zip(row_ids, row_scores, row_reasons) if s != -np.inf]
            for row_ids, row_scores, row_reasons in zip(ids, scores, reasons)
        ]

    def embed(self, user_texts: Sequence[str]) -> np.ndarray:
        """``[len(user_texts), embedding_dim]`` query embeddings (``embed_query``)."""
        return self.signatures["embed_query"](user_text=tf.constant(list(user_texts), tf.string))["embeddings"].numpy()


def _padded(lists: Sequence[Sequence[str]] | None, batch: int, name: str) -> tf.Tensor:
    lists = lists or [[] for _ in range(batch)]
    if len(lists) != batch:
        raise ValueError(f"{name} has {len(lists)} lists for {batch} user texts")
    width = max((len(row) for row in lists), default=0)
    return tf.constant([[str(v) for v in row] + [""] * (width - len(row)) for row in lists], tf.string, shape=[batch, width])


def load_export(path: str | Path) -> LoadedExport:
    """Loads an exported version (a version folder, or a model folder: its latest version) in
    Python, registering the op libraries it needs; see :class:`LoadedExport`."""
    return LoadedExport(path)
