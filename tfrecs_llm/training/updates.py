"""Changing a trained model without retraining from scratch: new items, new events.

`extend_catalog` makes new items recommendable at once: their description is embedded by the
frozen pretrained encoder (the same features training cached for the catalog) and their id maps
to the item-id embedding's OOV bucket, which id dropout taught to stand for "an item known by
its text alone". Nothing is trained. `fine_tune` trains the retrieval model further on new
feedback events, with the same features and training loop as `train_two_tower`.

Both take validated tables; ``Recommender.add_items`` / ``Recommender.update`` validate them.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.item_text import item_texts
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.text.presets import load_encoder
from tfrecs_llm.training.retrieval import example_features, fit, training_examples
from tfrecs_llm.training.sequential import free_text_table, scored_rows, sequence_windows

logger = logging.getLogger(__name__)

_MAX_REPORTED = 5
_EVENT_KEY = ["user_id", "item_id", "timestamp"]


def extend_catalog(
    retriever: Retriever,
    new_items: pd.DataFrame,
    source: str = "new items",
    item_encoder: TextEncoder | None = None,
    verbose: bool = False,
) -> Catalog:
    """``retriever``'s catalog plus the validated ``new_items`` (named ``source`` in errors).

    ``item_encoder`` embeds the new descriptions for the ``pretrained`` item text encoder; it
    must be the encoder that embedded the catalog: by default the retriever's encoder when BERT
    is frozen and whole (``encoder.query_layers`` 0), and a fresh copy of the pretrained checkpoint (``config.encoder``) when the
    query tower's BERT was fine-tuned (item features always come from the pretrained weights).
    The ``bag_of_words`` item encoder reads the new texts directly.

    Raises:
        ValueError: ids already in the catalog (named with their rows), or an empty table.
    """
    if new_items.empty:
        raise ValueError(f"{source}: no items to add (the table has no rows)")
    catalog = retriever.catalog
    _reject_known_ids(new_items, catalog, source)
    embeddings = None
    if catalog.text_embeddings is not None:
        encoder = item_encoder or _item_text_encoder(retriever)
        embeddings = embed_texts(encoder, item_texts(new_items), verbose=verbose, description="embedding new items")
    extended = catalog.extended(new_items, embeddings)
    logger.info("added %d items (catalog: %d items)", len(new_items), len(extended.item_ids))
    return extended


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


def _item_text_encoder(retriever: Retriever) -> TextEncoder:
    """The encoder that embedded the catalog: BERT as pretrained (never the fine-tuned one), all
    of its layers (the query tower's may be fewer, ``encoder.query_layers``)."""
    if retriever.config.encoder.trainable == "frozen" and retriever.config.encoder.query_layers == 0:
        return retriever.encoder
    encoder = load_encoder(retriever.config.encoder)
    encoder.trainable = False
    return encoder


def fine_tune(
    retriever: Retriever,
    new_events: pd.DataFrame,
    all_events: pd.DataFrame,
    epochs: int = 1,
    checkpoint_dir: str | Path | None = None,
    verbose: bool = False,
) -> int:
    """Fine-tunes ``retriever``'s two-tower model on ``new_events``, in place; returns how many
    training examples it used.

    ``new_events`` (positive ones only) and ``all_events`` are validated against the catalog.
    Training continues from the current weights with a fresh optimizer, or, with
    ``checkpoint_dir``, from the latest checkpoint there (weights and optimizer state; a
    checkpoint is written after every epoch). Each new event's user text is built, as in
    training, from the user's events strictly before it in ``all_events`` (the full history;
    it may already contain the new events: rows equal in ``user_id``, ``item_id`` and
    ``timestamp`` count once).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if new_events.empty:
        raise ValueError("new events: nothing to train on (no events, or only negative ones such as dislikes)")
    combined, is_new = _history_with_new(all_events, new_events)
    config = retriever.config
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train, epochs=_completed_epochs(checkpoint_dir) + epochs, max_events_per_user=0
        ),
    )
    if retriever.sequential:
        retriever.model.set_catalog(retriever.catalog.features(), scored_rows(retriever.catalog))
        windows = sequence_windows(combined, retriever.catalog, config, trained=is_new)
        retriever.model.set_text_table(free_text_table(retriever.encoder, windows.texts, retriever.pooled_cache, verbose))
        features, trained = windows.features(), int(windows.weights.sum())
    else:
        examples = training_examples(combined, retriever.builder, config)[is_new]
        features, trained = example_features(examples, retriever.catalog, retriever.encoder, config, verbose), len(examples)
    dataset = make_dataset(
        features, config.train.batch_size, seed=config.train.seed, shuffle_buffer=config.train.shuffle_buffer
    )
    fit(retriever.model, dataset, config, checkpoint_dir=checkpoint_dir, verbose=verbose)
    retriever.forget_item_embeddings()
    logger.info("fine-tuned on %d new events for %d epoch(s)", trained, epochs)
    return trained


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
