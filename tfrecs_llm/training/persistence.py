"""A trained model as a directory: config, catalog, cached embeddings, weights, the ranker.

Layout of a model directory (``Recommender.save``, ``tfrecs-llm train --output``)::

    manifest.json            {"format": "tfrecs_llm.Recommender", "version": ...}
    config.json              the Config it was trained with
    items.csv                the catalog, in row order
    item_text_embeddings.npy pretrained description embeddings [num_items, hidden_dim] (if cached)
    id_vocabulary.txt        ids the item-id embedding was trained on
    query_sample.json        training user texts ScaNN tunes on
    history_sample.json      their recent items (sequential query tower only)
    weights/model.*          the towers' weights, BERT included (no optimizer state)
    ranker_tables.npz, ranker/scorer.*   the ranking head, if trained
    state.json               what the model has folded in since training (``last_event_id``)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecs_llm import __version__
from tfrecs_llm.config import Config
from tfrecs_llm.data.atomic_dir import finish_staging, make_staging_dir, publish_dir
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.schema import load_items
from tfrecs_llm.models.ranking import RankingModel
from tfrecs_llm.models.retrieval import TwoTowerModel
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.ranking.topics import ItemTables
from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.text.shallow import query_encoder
from tfrecs_llm.text.finetune import apply_finetune_mode
from tfrecs_llm.text.presets import load_encoder
from tfrecs_llm.training.ranker import has_ranker, restore_ranker, save_ranker
from tfrecs_llm.training.retrieval import build_model
from tfrecs_llm.training.sequential import build_sequential_model

MANIFEST = "manifest.json"
STATE = "state.json"
FORMAT = "tfrecs_llm.Recommender"


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by ``save_model_dir`` (it has the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def check_replaceable(path: str | Path) -> None:
    """Raises ``FileExistsError`` unless ``path`` is free, an empty directory or a saved model:
    saving never replaces anything else (``--output .`` must not delete a working directory)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; choose another output path for the model")
    if not is_model_dir(path) and any(path.iterdir()):
        raise FileExistsError(
            f"{path} is a non-empty directory that is not a saved tfrecs_llm model (it has no {MANIFEST}); "
            "refusing to replace it. Choose a new or empty output directory, or remove this one yourself"
        )


def read_state(path: str | Path) -> dict:
    """The model directory's ``state.json`` (``{}`` when it has none), read without loading
    the model: ``last_event_id`` is the last feedback event ``update`` trained on."""
    file = Path(path) / STATE
    return json.loads(file.read_text()) if file.is_file() else {}


def save_model_dir(
    path: str | Path,
    retriever: Retriever,
    ranker: tuple[RankingModel, ItemTables] | None = None,
    state: dict | None = None,
) -> Path:
    """Writes ``retriever`` (and the ranker with its item tables) to the directory ``path``.

    ``path`` may be new, an empty directory or a saved model (which is replaced); anything else
    is refused (``check_replaceable``). The directory is written aside, flushed and swapped into
    place, so a crash at any moment leaves either the old or the new model, whole. Its
    permissions are those of a plain ``mkdir`` (the umask's).
    """
    path = Path(os.path.realpath(path))  # a symlink's target is what gets replaced
    check_replaceable(path)
    staging = make_staging_dir(path)
    try:
        retriever.config.save(staging / "config.json")
        catalog = retriever.catalog
        catalog.items.to_csv(staging / "items.csv", index=False)
        if catalog.text_embeddings is not None:
            np.save(staging / "item_text_embeddings.npy", catalog.text_embeddings)
        (staging / "id_vocabulary.txt").write_text("\n".join(catalog.id_vocabulary) + "\n")
        (staging / "query_sample.json").write_text(json.dumps(retriever.query_sample))
        if retriever.history_sample:
            (staging / "history_sample.json").write_text(json.dumps(retriever.history_sample))
        _weights_checkpoint(retriever.model).write(str(staging / "weights" / "model"))
        if ranker is not None:
            save_ranker(staging, *ranker)
        (staging / STATE).write_text(json.dumps(state or {}, indent=2))
        (staging / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": __version__}, indent=2))
        finish_staging(staging)
        check_replaceable(path)  # again: something may have appeared there while writing
        publish_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def load_model_dir(
    path: str | Path, encoder: TextEncoder | None = None
) -> tuple[Retriever, tuple[RankingModel, ItemTables] | None]:
    """Reads a directory written by ``save_model_dir``: the retriever, and the ranker with its
    item tables (``None`` if none was saved). ``encoder`` overrides ``config.encoder.preset``."""
    path = Path(path)
    if not is_model_dir(path):
        raise FileNotFoundError(
            f"{path} is not a saved tfrecs_llm model (no {MANIFEST}); expected a directory "
            "written by Recommender.save or `tfrecs-llm train --output`"
        )
    config = Config.load(path / "config.json")
    items = load_items(path / "items.csv")
    if encoder is None:
        encoder = load_encoder(config.encoder)
    encoder = query_encoder(encoder, config.encoder)
    apply_finetune_mode(encoder, config.encoder)
    catalog = Catalog.build(items)
    embeddings_file = path / "item_text_embeddings.npy"
    if embeddings_file.is_file():
        catalog.text_embeddings = np.load(embeddings_file)
    catalog.id_vocabulary = np.array((path / "id_vocabulary.txt").read_text().splitlines(), dtype=str)
    if config.model.query_history == "sequence":
        model = build_sequential_model(config, encoder, catalog, np.zeros((1, encoder.hidden_dim), np.float32))
        model.compute_loss(_one_window(config.model.history_length))  # creates every variable
    else:
        model = build_model(config, encoder, catalog)
        model.item_tower(make_dataset(catalog.features(np.arange(1)), 1, shuffle=False).get_single_element())
        model.query_tower({"user_text_embedding": tf.zeros([1, encoder.hidden_dim])})
    _weights_checkpoint(model).read(str(path / "weights" / "model")).assert_existing_objects_matched()
    query_sample = []
    if (path / "query_sample.json").is_file():  # models saved by earlier versions have none
        query_sample = json.loads((path / "query_sample.json").read_text())
    history_sample = []
    if (path / "history_sample.json").is_file():
        history_sample = json.loads((path / "history_sample.json").read_text())
    retriever = Retriever(config, encoder, catalog, model, query_sample=query_sample, history_sample=history_sample)
    ranker = None
    if has_ranker(path):
        ranker = restore_ranker(path, retriever.item_embeddings(), config.ranking, config.train.temperature)
    return retriever, ranker


def _one_window(length: int) -> dict[str, tf.Tensor]:
    rows = tf.ones([1, length], tf.int32)
    return {"history_rows": rows, "target_rows": rows, "text_index": tf.zeros([1, length], tf.int32),
            "weights": tf.ones([1, length])}


def _weights_checkpoint(model: TwoTowerModel) -> tf.train.Checkpoint:
    """The towers' weights (BERT included), without optimizer state."""
    return tf.train.Checkpoint(query_tower=model.query_tower, item_tower=model.item_tower)
