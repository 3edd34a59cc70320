"""SASRec (Kang & McAuley, 2018): self-attentive sequential recommendation over item ids.

Item-id embeddings plus learned position embeddings, ``num_blocks`` causal self-attention blocks
(pre-LayerNorm, residual, position-wise feed-forward), the last position's state scored against
the item embeddings (shared with the input). Trained with a full softmax over the catalog at
every position of each user's time-ordered train sequence (the cross-entropy variant, which
beats the paper's one-negative binary loss on every dataset it was compared on). Sequences
longer than ``max_length + 1`` are cut into consecutive windows, so every event trains.

The number of epochs is chosen on a validation split carved from the train part (each user's
last train event, NDCG@10 checked every ``eval_every`` epochs with early stopping); the model
is then trained again on the whole train part for that many epochs. Items without a train
event score the lowest (an id model knows nothing of them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from tfrecs_llm.evaluation.baselines.histories import ScoreFn, user_sequences, validation_ndcg, validation_split
from tfrecs_llm.towers.attention import CausalSelfAttentionBlock


@dataclass
class SasRecConfig:
    """Hyper-parameters; the architecture follows the paper's MovieLens setting."""

    hidden_dim: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    max_length: int = 50
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 200
    eval_every: int = 5
    patience: int = 4
    seed: int = 42

    def validate(self) -> "SasRecConfig":
        for name in ("hidden_dim", "num_blocks", "num_heads", "max_length", "batch_size", "max_epochs",
                     "eval_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"sasrec.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"sasrec.dropout must be in [0, 1), got {self.dropout}")
        return self


class SasRec(tf_keras.Model):
    """``item_rows: [batch, length]`` (0 pads, catalog row + 1 otherwise), oldest first ->
    ``[batch, length, num_items]`` next-item logits at every position."""

    def __init__(self, num_items: int, config: SasRecConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.item_embedding = tf_keras.layers.Embedding(num_items + 1, config.hidden_dim, mask_zero=False)
        self.position_embedding = tf_keras.layers.Embedding(config.max_length, config.hidden_dim)
        self.dropout = tf_keras.layers.Dropout(config.dropout)
        self.blocks = [CausalSelfAttentionBlock(config.hidden_dim, config.num_heads, config.dropout)
                       for _ in range(config.num_blocks)]
        self.final_norm = tf_keras.layers.LayerNormalization(epsilon=1e-8)
        self.scale = config.hidden_dim**0.5

    def states(self, item_rows: tf.Tensor, training: bool = False) -> tf.Tensor:
        padding = item_rows > 0
        positions = tf.range(tf.shape(item_rows)[1])
        states = self.item_embedding(item_rows) * self.scale + self.position_embedding(positions)[tf.newaxis]
        states = self.dropout(states, training=training) * tf.cast(padding, tf.float32)[..., tf.newaxis]
        for block in self.blocks:
            states = block(states, padding, training=training)
        return self.final_norm(states)

    def call(self, item_rows: tf.Tensor, training: bool = False) -> tf.Tensor:
        states = self.states(item_rows, training=training)  # builds the embedding first
        return tf.einsum("bld,nd->bln", states, self.item_embedding.embeddings[1:])


def training_windows(sequences: dict[str, np.ndarray], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)``, each ``[num_windows, max_length]``: consecutive windows of every
    sequence (right-aligned, 0-padded on the left, ids as row + 1), targets the next items."""
    inputs, targets = [], []
    for rows in sequences.values():
        ids = rows + 1
        for end in range(len(ids), 1, -max_length):
            window = ids[max(0, end - max_length - 1) : end]
            source, target = window[:-1], window[1:]
            pad = max_length - len(source)
            inputs.append(np.pad(source, (pad, 0)))
            targets.append(np.pad(target, (pad, 0)))
    return np.asarray(inputs, np.int32), np.asarray(targets, np.int32)


def _train(model: SasRec, sequences: dict[str, np.ndarray], config: SasRecConfig):
    inputs, targets = training_windows(sequences, config.max_length)
    optimizer = tf_keras.optimizers.Adam(config.learning_rate, beta_2=0.98)
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, targets))
        .shuffle(len(inputs), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
    )

    @tf.function
    def step(batch_inputs: tf.Tensor, batch_targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(batch_inputs, training=True)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(batch_targets - 1, 0), logits)
            weights = tf.cast(batch_targets > 0, tf.float32)
            loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def run_epoch() -> None:
        for batch_inputs, batch_targets in dataset:
            step(batch_inputs, batch_targets)

    return run_epoch


def _scorer(model: SasRec, sequences: dict[str, np.ndarray], seen: np.ndarray, config: SasRecConfig) -> ScoreFn:
    def score(queries: pd.DataFrame) -> np.ndarray:
        windows = np.zeros((len(queries), config.max_length), np.int32)
        for row, user in enumerate(queries["user_id"].astype(str)):
            history = sequences.get(user, np.zeros(0, np.int64))[-config.max_length :] + 1
            if len(history):
                windows[row, -len(history) :] = history
        states = model.states(tf.constant(windows), training=False)[:, -1]
        logits = (states @ tf.transpose(model.item_embedding.embeddings[1:])).numpy()
        return np.where(seen[None, :], logits, np.float32(-1e9))

    return score


def _fit(train: pd.DataFrame, catalog_ids: Sequence[str] | np.ndarray, config: SasRecConfig):
    tf_keras.utils.set_random_seed(config.seed)
    sequences = user_sequences(train, catalog_ids)
    seen = np.zeros(len(catalog_ids), bool)
    for rows in sequences.values():
        seen[rows] = True
    model = SasRec(len(catalog_ids), config)
    return model, _train(model, sequences, config), _scorer(model, sequences, seen, config)


def sasrec_scorer(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    config: SasRecConfig | None = None,
    verbose: bool = False,
) -> tuple[ScoreFn, dict]:
    """Chooses the epochs on the validation split, trains on ``train``; returns the score
    function (queries ``[n]`` rows, ``user_id`` -> ``[n, num_items]``) and what was chosen."""
    config = (config or SasRecConfig()).validate()
    fit, validation = validation_split(train)
    _, run_epoch, score = _fit(fit, catalog_ids, config)
    curve: dict[int, float] = {}
    best_epochs, since_best = config.eval_every, 0
    for epoch in range(1, config.max_epochs + 1):
        run_epoch()
        if epoch % config.eval_every:
            continue
        curve[epoch] = validation_ndcg(score, catalog_ids, fit, validation)
        if verbose:
            print(f"sasrec: epoch {epoch}, validation NDCG@10 {curve[epoch]:.4f}", flush=True)
        if curve[epoch] >= max(curve.values()):
            best_epochs, since_best = epoch, 0
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    _, run_epoch, score = _fit(train, catalog_ids, config)
    for _ in range(best_epochs):
        run_epoch()
    return score, {"epochs": best_epochs, "validation_ndcg@10": curve, "config": dataclasses.asdict(config)}
