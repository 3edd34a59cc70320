"""Training inputs and model assembly for ``model.query_history = "sequence"``.

The one-time BERT pass embeds the catalog and the distinct free texts only: its cost grows
with the catalog and what users wrote, not with the number of events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tf_keras

from tfrecs_llm.config import Config
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.sequences import Windows, training_windows
from tfrecs_llm.models.sequential import SequentialTwoTowerModel
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.towers import ItemTower
from tfrecs_llm.towers.sequence import SequenceQueryTower


def sequence_windows(
    events: pd.DataFrame, catalog: Catalog, config: Config, trained: np.ndarray | None = None
) -> Windows:
    """Windows of ``model.history_length`` over every user's validated events (see
    ``tfrecs_llm.data.sequences.training_windows``); ``trained`` marks the events to learn."""
    rows = catalog.rows_of(events["item_id"])
    if np.isnan(rows.astype(float)).any():
        raise ValueError("training events reference items missing from the catalog")
    return training_windows(events, catalog.row_index(), config.model.history_length, trained)


def free_text_table(encoder: TextEncoder, texts: list[str], cache: dict[str, np.ndarray], verbose: bool) -> np.ndarray:
    """``[len(texts), hidden_dim]`` pooled BERT output of each free text (filling ``cache``)."""
    missing = [t for t in texts if t not in cache]
    if missing:
        cache.update(zip(missing, embed_texts(encoder, missing, verbose=verbose, description="embedding free texts")))
    return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, encoder.hidden_dim), np.float32)


def num_negatives(config: Config, catalog: Catalog) -> int:
    """0 (softmax over the whole catalog) up to ``train.full_softmax_max_items``, else sampled."""
    return 0 if len(catalog.item_ids) <= config.train.full_softmax_max_items else config.train.sampled_negatives


def scored_rows(catalog: Catalog) -> np.ndarray:
    """Rows of the items with training events (the id vocabulary): what the softmax scores."""
    return np.flatnonzero(np.isin(catalog.item_ids, catalog.id_vocabulary))


def build_sequential_model(
    config: Config, encoder: TextEncoder, catalog: Catalog, text_table: np.ndarray
) -> SequentialTwoTowerModel:
    """Assembles the sequential towers and the model, compiled with Adam."""
    item_tower = ItemTower(
        catalog.id_vocabulary,
        config.model,
        bag_of_words_texts=catalog.vocabulary_texts() if config.model.item_text_encoder == "bag_of_words" else None,
    )
    model = SequentialTwoTowerModel(
        SequenceQueryTower(encoder, config.model), item_tower, catalog.features(), scored_rows(catalog), text_table,
        config.train.temperature, num_negatives(config, catalog),
    )
    model.compile(optimizer=tf_keras.optimizers.legacy.Adam(config.train.learning_rate))
    return model
