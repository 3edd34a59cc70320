"""Exporting a trained model as a TF Serving SavedModel version."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecs_llm import __version__
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.export.batching_config import FILE_NAME as BATCHING_FILE
from tfrecs_llm.export.batching_config import BatchingParameters
from tfrecs_llm.export.layout import next_version, staged_version
from tfrecs_llm.export.model_config import update_models_config
from tfrecs_llm.export.signatures import RecommendModule
from tfrecs_llm.export.warmup import write_warmup_requests
from tfrecs_llm.index import build_index
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.ranking.scorer import CandidateScorer
from tfrecs_llm.ranking.stage import build_stage
from tfrecs_llm.text.compiled import compiled_batch_sizes

logger = logging.getLogger(__name__)

SAVE_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann", "TFText"])


def _library_versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["tensorflow", "tf-keras", "tensorflow-text", "tensorflow-recommenders", "scann", "keras-hub"]
    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


def recommended_batching(jit_compile: bool) -> BatchingParameters:
    """The batching an export recommends: batches of up to 32 texts, closed 2 ms after their
    first request; an XLA-compiled BERT only sees the batch sizes it was compiled (and warmed) for."""
    if jit_compile:
        sizes = compiled_batch_sizes()
        return BatchingParameters(max_batch_size=sizes[-1], allowed_batch_sizes=tuple(sizes))
    return BatchingParameters()


def warmup_texts(item_ids: np.ndarray, builder: UserTextBuilder, count: int = 8) -> list[str]:
    """User texts shaped like real requests: empty, then histories of 1..count-1 of ``item_ids``."""
    histories = [list(item_ids[: n % len(item_ids) + 1]) for n in range(count - 1)]
    return [""] + [builder.build("", history) for history in histories]


def export_tf_serving(
    retriever: Retriever,
    base_path: str | Path,
    model_name: str,
    version: int | None = None,
    index_kind: str | None = None,
    k: int | None = None,
    metrics: dict | None = None,
    ranker: CandidateScorer | None = None,
) -> Path:
    """Writes ``<base_path>/<model_name>/<version>/`` (saved_model.pb, variables/, assets.extra/).

    ``retriever``: the trained two-tower model with its catalog (a ``Recommender`` is one);
    ``ranker``: the ranking head's scorer, re-ordering the retrieved candidates (``None``:
    retrieval order).

    ``assets.extra/`` holds ``model_card.json`` (data, config, index, metrics, library versions),
    ``items.csv`` (item_id, title of every indexed item) and ``tf_serving_warmup_requests``
    (PredictionLog records TF Serving replays before serving the version). ``<base_path>/
    models.config`` is created, or gains an entry for ``model_name`` if it lacks one (the rest
    of an existing file is left as it is).

    ``index_kind`` overrides ``config.index.kind`` (``auto``, ``scann``, ``brute_force``); ``k``
    overrides ``config.index.k``. The version is published atomically. Returns its path.

    Example::

        model = tfrecs_llm.Recommender.train(items, train)
        export_tf_serving(model, "saved_models", "demo")   # -> saved_models/demo/1
        # then: docker run -p 8501:8501 -v $PWD/saved_models/demo:/models/demo \
        #   -e MODEL_NAME=demo tensorflow/serving:2.20.0
    """
    index_config = retriever.config.index
    if index_kind is not None:
        index_config = dataclasses.replace(index_config, kind=index_kind)
    if k is not None:
        index_config = dataclasses.replace(index_config, k=k)
    index_config.validate()
    if index_config.k > len(retriever.catalog.item_ids):
        raise ValueError(
            f"k={index_config.k} exceeds the catalog size ({len(retriever.catalog.item_ids)} items)"
        )
    item_embeddings = retriever.item_embeddings()
    index, choice = build_index(
        retriever.catalog.item_ids,
        item_embeddings,
        index_config,
        k=max(index_config.k, retriever.config.ranking.num_candidates),
        query_embeddings=retriever.tuning_queries(index_config),
    )
    stage = build_stage(index, ranker, retriever.catalog, item_embeddings, retriever.config.ranking.num_candidates)
    module = RecommendModule(
        retriever.model.query_tower,
        retriever.model.item_tower,
        stage,
        index_config.k,
        # embed_items runs the query tower's encoder: right only when items used that one too.
        embeds_items=(retriever.config.encoder.trainable == "frozen" and retriever.config.encoder.query_layers == 0)
        or retriever.config.model.item_text_encoder == "bag_of_words",
        jit_compile=retriever.config.encoder.jit_compile,
    )
    model_dir = Path(base_path) / model_name
    version = version or next_version(model_dir)
    with staged_version(model_dir, version) as staging:
        tf.saved_model.save(module, str(staging), signatures=module.signatures(), options=SAVE_OPTIONS)
        card = {
            "model_name": model_name,
            "version": version,
            "index": {
                "kind": choice.kind,
                "reason": choice.reason,
                "k": index_config.k,
                "scann": choice.scann.to_dict() if choice.scann is not None else None,
            },
            "ranker": ranker is not None,
            "num_items": int(len(retriever.catalog.item_ids)),
            "config": retriever.config.to_dict(),
            "metrics": metrics or {},
            "tfrecs_llm": __version__,
            "python": platform.python_version(),
            "libraries": _library_versions(),
        }
        extra = staging / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / "model_card.json").write_text(json.dumps(card, indent=2))
        # The catalog's ids and titles: what a server needs to validate feedback and to build
        # user texts from an event log with the training-time builder.
        retriever.catalog.items[["item_id", "title"]].to_csv(extra / "items.csv", index=False)
        # An XLA-compiled BERT compiles one program per batch bucket on first use: warm each.
        batch_sizes = compiled_batch_sizes() if retriever.config.encoder.jit_compile else (1,)
        texts = warmup_texts(retriever.catalog.item_ids, retriever.builder)
        write_warmup_requests(staging, model_name, texts, batch_sizes=batch_sizes)
        (extra / BATCHING_FILE).write_text(recommended_batching(retriever.config.encoder.jit_compile).to_text())
    final = model_dir / str(version)
    update_models_config(base_path, model_name)
    logger.info("exported %s (index: %s)", final, choice.kind)
    return final
