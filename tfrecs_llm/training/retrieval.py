"""Turning validated tables into a trained two-tower model: examples, features, fit with resume.

Everything here takes tables already validated by ``tfrecs_llm.data.schema`` (the public entry
points validate them) and does not validate again.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs_llm.config import Config
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.sequences import recent_items
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.index import sample_texts
from tfrecs_llm.models import TwoTowerModel
from tfrecs_llm.models.retrieval import make_retrieval_task
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.models.sequential import SequentialTwoTowerModel
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.text.shallow import query_encoder
from tfrecs_llm.text.finetune import apply_finetune_mode
from tfrecs_llm.text.preprocessing import tokenize_in_pipeline
from tfrecs_llm.text.presets import load_encoder
from tfrecs_llm.towers import ItemTower, QueryTower
from tfrecs_llm.training.sequential import build_sequential_model, free_text_table, sequence_windows
from tfrecs_llm.training.distribute import (
    check_created_in_scope,
    check_workers_agree,
    checkpoint_write_dir,
    make_strategy,
    shard_by_data,
)

logger = logging.getLogger(__name__)


def train_two_tower(
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    config: Config,
    checkpoint_dir: str | Path | None = None,
    encoder: TextEncoder | None = None,
    verbose: bool = True,
) -> Retriever:
    """Caches text embeddings and trains the two-tower model on validated tables.

    ``items`` / ``interactions``: validated (``validate_items`` / ``validate_interactions``),
    ``interactions`` being every training event. ``config`` must be validated. ``encoder``
    overrides ``config.encoder.preset``; under ``train.strategy`` other than ``default`` it must
    have been created inside that strategy's ``scope()``.
    """
    # First: a multi-worker strategy must be set up before TensorFlow runs anything.
    strategy = make_strategy(config.train.strategy)
    tf.keras.utils.set_random_seed(config.train.seed)
    # BERT's (and LoRA's) variables are trained, so they must be the strategy's mirrored ones.
    with strategy.scope():
        if encoder is None:
            encoder = load_encoder(config.encoder)
        item_encoder = encoder
        # Item descriptions: the full encoder, once; the query tower: its first query_layers layers.
        encoder = query_encoder(item_encoder, config.encoder)
        apply_finetune_mode(encoder, config.encoder, for_training=True)
    check_created_in_scope(encoder.weights, strategy, "the text encoder")
    def embed_catalog(texts: list[str]) -> np.ndarray:
        return embed_texts(item_encoder, texts, verbose=verbose, description="embedding catalog")

    pretrained_items = config.model.item_text_encoder == "pretrained"
    catalog = Catalog.build(items, embed_catalog if pretrained_items else None)
    # An id without training events would keep its random initial embedding: such items
    # use the OOV bucket, which item-id dropout trains to stand for "known by text alone".
    catalog.id_vocabulary = catalog.item_ids[np.isin(catalog.item_ids, interactions["item_id"].astype(str))]
    if config.model.query_history == "sequence":
        return _train_sequential(interactions, catalog, encoder, config, checkpoint_dir, strategy, verbose)
    builder = UserTextBuilder.from_config(catalog.items, config.data)
    examples = training_examples(interactions, builder, config)
    features = example_features(examples, catalog, encoder, config, verbose)
    dataset = make_dataset(
        features,
        config.train.batch_size,
        seed=config.train.seed,
        shuffle_buffer=config.train.shuffle_buffer,
    )
    if config.encoder.trainable != "frozen":
        dataset = tokenize_in_pipeline(dataset, encoder)
    with strategy.scope():
        model = build_model(config, encoder, catalog)
        history = fit(model, shard_by_data(dataset), config, checkpoint_dir=checkpoint_dir, verbose=verbose)
    pooled = None
    if "user_text_embedding" in features:
        pooled = dict(zip(examples["user_text"], features["user_text_embedding"]))
    query_sample = sample_texts(examples["user_text"], config.index.scann_tuning_queries, config.train.seed)
    return Retriever(config, encoder, catalog, model, query_sample=query_sample, pooled_cache=pooled,
                     training_history=history)


def _train_sequential(
    interactions: pd.DataFrame,
    catalog: Catalog,
    encoder: TextEncoder,
    config: Config,
    checkpoint_dir: str | Path | None,
    strategy: tf.distribute.Strategy,
    verbose: bool,
) -> Retriever:
    windows = sequence_windows(interactions, catalog, config)
    pooled: dict[str, np.ndarray] = {}
    table = free_text_table(encoder, windows.texts, pooled, verbose)
    if verbose:
        print(f"training on {int(windows.weights.sum())} next-item predictions in {len(windows.inputs)} "
              f"windows of {config.model.history_length}")
    dataset = make_dataset(windows.features(), config.train.batch_size, seed=config.train.seed,
                           shuffle_buffer=config.train.shuffle_buffer)
    with strategy.scope():
        model = build_sequential_model(config, encoder, catalog, table)
        history = fit(model, shard_by_data(dataset), config, checkpoint_dir=checkpoint_dir, verbose=verbose)
    texts, histories = query_sample(interactions, config)
    return Retriever(config, encoder, catalog, model, query_sample=texts, pooled_cache=pooled,
                     history_sample=histories, training_history=history)


def query_sample(interactions: pd.DataFrame, config: Config) -> tuple[list[str], list[list[str]]]:
    """A seeded sample of users as queries look at serving time: each user's last free text
    and recent items (what ScaNN tunes its search on)."""
    users = sample_texts(interactions["user_id"].astype(str).unique().tolist(),
                         config.index.scann_tuning_queries, config.train.seed)
    histories = recent_items(interactions, users, config.model.history_length)
    free = (interactions.groupby("user_id")["user_text"].last().fillna("").astype(str)
            if "user_text" in interactions else pd.Series(dtype=object))
    return [str(free.get(user, "")) for user in users], histories


def build_model(config: Config, encoder: TextEncoder, catalog: Catalog) -> TwoTowerModel:
    """Assembles the towers, the retrieval task and an optimizer."""
    query_tower = QueryTower(encoder, config.model.embedding_dim)
    item_tower = ItemTower(
        catalog.id_vocabulary,
        config.model,
        # Adapted on the training catalog only: items added later must not change the vocabulary.
        bag_of_words_texts=catalog.vocabulary_texts()
        if config.model.item_text_encoder == "bag_of_words"
        else None,
    )
    # No FactorizedTopK metrics: TFRS computes them only outside training, so every epoch's log
    # would show them as 0; held-out quality comes from Recommender.evaluate instead.
    task = make_retrieval_task(config.train)
    model = TwoTowerModel(query_tower, item_tower, task, logq_correction=config.train.logq_correction)
    model.compile(optimizer=make_optimizer(config, model))
    return model


def make_optimizer(config: Config, model: TwoTowerModel) -> tf_keras.optimizers.Optimizer:
    """Adam for the heads; a separate, small-learning-rate Adam for BERT when it is fine-tuned."""
    encoder = model.query_tower.encoder

    def bert_variables() -> list[tf.Variable]:
        return list(encoder.trainable_weights)

    def head_variables() -> list[tf.Variable]:
        bert = {v.ref() for v in encoder.trainable_weights}
        return [v for v in model.trainable_variables if v.ref() not in bert]

    return tfrs.experimental.optimizers.CompositeOptimizer(
        [
            (tf_keras.optimizers.legacy.Adam(config.train.learning_rate), head_variables),
            (tf_keras.optimizers.legacy.Adam(config.train.encoder_learning_rate), bert_variables),
        ]
    )


def training_examples(
    interactions: pd.DataFrame, builder: UserTextBuilder, config: Config
) -> pd.DataFrame:
    """One row per training event: ``user_id, item_id, user_text`` (text as of before the event).

    With ``train.max_events_per_user > 0`` only each user's most recent events are kept (their
    user texts still see the full earlier history).
    """
    examples = interactions[["user_id", "item_id", "timestamp"]].copy()
    examples["user_text"] = builder.for_events(interactions)
    limit = config.train.max_events_per_user
    if limit > 0:
        order = examples.sort_values(["user_id", "timestamp"], kind="stable")
        examples = order.groupby("user_id", sort=False).tail(limit).sort_index()
    return examples


def example_features(
    examples: pd.DataFrame, catalog: Catalog, encoder: TextEncoder, config: Config, verbose: bool
) -> dict[str, np.ndarray]:
    """Feature columns for ``make_dataset``; caches user-text embeddings when BERT is frozen."""
    rows = catalog.rows_of(examples["item_id"])
    if np.isnan(rows.astype(float)).any():
        raise ValueError("training events reference items missing from the catalog")
    rows = rows.astype(int)
    features = catalog.features(rows)
    if config.encoder.trainable == "frozen":
        features["user_text_embedding"] = embed_texts(
            encoder, examples["user_text"].to_numpy(), verbose=verbose, description="embedding user texts"
        )
    else:
        features["user_text"] = examples["user_text"].to_numpy(dtype=str)
    counts = np.bincount(rows, minlength=len(catalog.item_ids)).astype(np.float64)
    features["item_probability"] = (counts / counts.sum())[rows].astype(np.float32)
    return features


class _SaveEpoch(tf_keras.callbacks.Callback):
    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable) -> None:
        super().__init__()
        self.manager = manager
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch + 1)
        path = self.manager.save(checkpoint_number=epoch + 1)
        logger.info("saved checkpoint %s", path)


def fit(
    model: TwoTowerModel,
    train: tf.data.Dataset,
    config: Config,
    checkpoint_dir: str | Path | None = None,
    validation: tf.data.Dataset | None = None,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """Trains for ``train.epochs`` epochs, resuming from the latest checkpoint in ``checkpoint_dir``.

    A checkpoint (model weights including BERT, optimizer state, epoch) is written after every
    epoch; a rerun with more epochs continues where the last run stopped. Under a distribution
    strategy, call this inside its ``scope()``: only the chief writes to ``checkpoint_dir``, and
    every worker resumes from it.
    """
    strategy = tf.distribute.get_strategy()
    callbacks: list[tf_keras.callbacks.Callback] = []
    initial_epoch = 0
    write_dir = None
    # Create every variable first (in the strategy's scope, not inside a replica), so that
    # restoring is immediate rather than deferred.
    batch = next(iter(train))
    if isinstance(model, SequentialTwoTowerModel):
        model.compute_loss(batch)
    else:
        model.query_tower(batch)
        model.item_tower(batch)
    if checkpoint_dir is not None:
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
        write_dir = checkpoint_write_dir(str(checkpoint_dir), strategy)
        manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=2)
        latest = tf.train.latest_checkpoint(str(checkpoint_dir))
        if latest:
            status = checkpoint.restore(latest)
            # Optimizer slots are created (and then restored) by the first training step.
            status.assert_existing_objects_matched().expect_partial()
            initial_epoch = int(epoch.numpy())
            if verbose:
                print(f"resuming from {latest} (epoch {initial_epoch})")
        callbacks.append(_SaveEpoch(manager, epoch))
    check_workers_agree(
        {"epoch to resume from": initial_epoch, "batches per epoch": int(train.cardinality())}, strategy
    )
    try:
        if initial_epoch >= config.train.epochs:
            return {}
        history = model.fit(
            train,
            epochs=config.train.epochs,
            initial_epoch=initial_epoch,
            validation_data=validation,
            callbacks=callbacks,
            verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0,
        )
    finally:
        if write_dir is not None and write_dir != str(checkpoint_dir):
            shutil.rmtree(write_dir, ignore_errors=True)
    return history.history
