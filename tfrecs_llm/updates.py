"""Changing a trained Recommender without retraining from scratch: new items, new events.

`add_items` makes new items recommendable at once: their description is embedded by the
frozen pretrained encoder (the same features training cached for the catalog) and their id maps
to the item-id embedding's OOV bucket, which id dropout taught to stand for "an item known by
its text alone". Nothing is trained. `update` fine-tunes the retrieval model on new feedback
events, with the same features and training loop as `Recommender.train`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrecs_llm.api import Recommender, TableLike
from tfrecs_llm.data.item_text import item_texts
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.schema import load_items, validate_interactions, validate_items
from tfrecs_llm.serving.event_log import NEGATIVE_EVENT_TYPES
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.training import Catalog, example_features, fit, training_examples

logger = logging.getLogger(__name__)

_MAX_REPORTED = 5
_EVENT_KEY = ["user_id", "item_id", "timestamp"]


def add_items(
    recommender: Recommender,
    new_items: TableLike,
    item_encoder: TextEncoder | None = None,
    verbose: bool = False,
) -> Recommender:
    """A Recommender over the catalog plus ``new_items``, sharing the trained model (no training).

    ``new_items``: a DataFrame or a ``.csv`` / ``.parquet`` file with the catalog's columns
    (``item_id, title, description[, category, tags, published_at]``); every id must be new.
    ``item_encoder`` embeds the new descriptions for the ``pretrained`` item text encoder; it
    must be the encoder that embedded the catalog: by default ``recommender.encoder`` when BERT
    is frozen, and a fresh copy of the pretrained checkpoint (``config.encoder``) when the
    query tower's BERT was fine-tuned (item features always come from the pretrained weights).
    The ``bag_of_words`` item encoder reads the new texts directly.

    The ranking head, if any, is dropped with a warning: its item tables are per catalog row.
    ``recommender`` itself is left unchanged.

    Raises:
        SchemaError (a ValueError): a bad table, naming the file, column and rows.
        ValueError: ids already in the catalog (named with their rows), or an empty table.
    """
    source = "new items" if isinstance(new_items, pd.DataFrame) else str(new_items)
    table = validate_items(new_items, source) if isinstance(new_items, pd.DataFrame) else load_items(new_items)
    if table.empty:
        raise ValueError(f"{source}: no items to add (the table has no rows)")
    _reject_known_ids(table, recommender.catalog, source)
    catalog = recommender.catalog
    texts = item_texts(table)
    embeddings = None
    if catalog.text_embeddings is not None:
        encoder = item_encoder or _item_text_encoder(recommender)
        fresh = embed_texts(encoder, texts, verbose=verbose, description="embedding new items")
        if fresh.shape[1] != catalog.text_embeddings.shape[1]:
            raise ValueError(
                f"the item encoder gives {fresh.shape[1]}-dimensional text embeddings but the catalog's "
                f"are {catalog.text_embeddings.shape[1]}-dimensional; pass the encoder that embedded the catalog"
            )
        embeddings = np.concatenate([catalog.text_embeddings, fresh])
    items = validate_items(pd.concat([catalog.items, table], ignore_index=True), "catalog + " + source)
    extended = Catalog(
        items=items,
        item_ids=items["item_id"].to_numpy(dtype=str),
        texts=[*catalog.texts, *texts],
        text_embeddings=embeddings,
        id_vocabulary=catalog.id_vocabulary,
    )
    updated = Recommender(recommender.config, recommender.encoder, extended, recommender.model)
    updated._pooled_cache = recommender._pooled_cache
    updated.query_sample = recommender.query_sample
    if recommender.ranker is not None:
        logger.warning(
            "dropping the ranking head: its item tables cover the %d items it was trained with; "
            "retrain it with Recommender.train_ranker to rank the %d-item catalog",
            len(catalog.item_ids), len(extended.item_ids),
        )
    logger.info("added %d items (catalog: %d items)", len(table), len(extended.item_ids))
    return updated


def _reject_known_ids(table: pd.DataFrame, catalog: Catalog, source: str) -> None:
    known = np.flatnonzero(table["item_id"].isin(set(catalog.item_ids)).to_numpy())
    if not len(known):
        return
    csv = source.lower().endswith(".csv")
    shown = [
        f"{'line ' + str(pos + 2) if csv else 'row ' + str(table.index[pos])} {table['item_id'].iloc[pos]!r}"
        for pos in known[:_MAX_REPORTED]
    ]
    more = " ..." if len(known) > _MAX_REPORTED else ""
    raise ValueError(
        f"{source}: {len(known)} item id(s) already in the catalog ({', '.join(shown)}{more}); "
        "only new items can be added: give them new ids, or retrain to change existing items"
    )


def _item_text_encoder(recommender: Recommender) -> TextEncoder:
    """The encoder that embedded the catalog: BERT as pretrained (never the fine-tuned one)."""
    if recommender.config.encoder.trainable == "frozen":
        return recommender.encoder
    encoder = TextEncoder.from_config_section(recommender.config.encoder)
    encoder.trainable = False
    return encoder


def positive_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events that say "this", i.e. without the ``type`` values in ``NEGATIVE_EVENT_TYPES``.

    Negative events (dislikes) are neither trained on nor part of user texts, as on the server.
    """
    if "type" not in events.columns:
        return events
    return events[~events["type"].isin(NEGATIVE_EVENT_TYPES).to_numpy()]


def update(
    recommender: Recommender,
    new_events: pd.DataFrame,
    all_events: pd.DataFrame,
    epochs: int = 1,
    checkpoint_dir: str | Path | None = None,
    verbose: bool = False,
) -> Recommender:
    """Fine-tunes ``recommender``'s retrieval model on ``new_events``, in place; returns it.

    Training continues from the current weights with a fresh optimizer, or, with
    ``checkpoint_dir``, from the latest checkpoint there (weights and optimizer state; a
    checkpoint is written after every epoch, as in `Recommender.train`). Each new event's user
    text is built, as in training, from the user's events strictly before it in ``all_events``
    (the full history; it may already contain the new events: rows equal in ``user_id``,
    ``item_id`` and ``timestamp`` count once). Events whose ``type`` is a negative one
    (``dislike``) are ignored. The ranker, if any, is kept (its tables are per catalog row).

    Raises:
        SchemaError (a ValueError): events on items outside the catalog (named with their rows),
            or otherwise malformed events.
        ValueError: no positive new events, or ``epochs < 1``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    items = recommender.catalog.items
    new = positive_events(validate_interactions(new_events, items, source="new events"))
    history = positive_events(validate_interactions(all_events, items, source="event history"))
    if new.empty:
        raise ValueError("new events: nothing to train on (no events, or only negative ones such as dislikes)")
    combined, is_new = _history_with_new(history, new)
    config = recommender.config
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train, epochs=_completed_epochs(checkpoint_dir) + epochs, max_events_per_user=0
        ),
    )
    examples = training_examples(combined, recommender.builder, config)[is_new]
    features = example_features(examples, recommender.catalog, recommender.encoder, config, verbose)
    dataset = make_dataset(
        features, config.train.batch_size, seed=config.train.seed, shuffle_buffer=config.train.shuffle_buffer
    )
    fit(recommender.model, dataset, config, checkpoint_dir=checkpoint_dir, verbose=verbose)
    recommender._index = None  # item embeddings changed with the item tower
    logger.info("fine-tuned on %d new events for %d epoch(s)", len(examples), epochs)
    return recommender


def _history_with_new(history: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``history`` without the rows also in ``new``, then ``new``; and the mask of new rows."""
    in_new = pd.MultiIndex.from_frame(history[_EVENT_KEY]).isin(pd.MultiIndex.from_frame(new[_EVENT_KEY]))
    kept = history[~in_new]
    combined = pd.concat([kept, new], ignore_index=True)
    return combined, np.r_[np.zeros(len(kept), bool), np.ones(len(new), bool)]


def _completed_epochs(checkpoint_dir: str | Path | None) -> int:
    """The epoch counter of the latest checkpoint in ``checkpoint_dir`` (0 without one)."""
    latest = tf.train.latest_checkpoint(str(checkpoint_dir)) if checkpoint_dir is not None else None
    if latest is None:
        return 0
    return int(tf.train.load_checkpoint(latest).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
