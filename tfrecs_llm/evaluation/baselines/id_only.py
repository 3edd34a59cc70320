"""The id-only two-tower baseline: TensorFlow Recommenders' basic-retrieval tutorial model.

User-id and item-id ``StringLookup`` + ``Embedding`` towers (32 dimensions), an in-batch softmax
``tfrs.tasks.Retrieval`` task and Adagrad(0.1), trained on the same train events as the model
(https://www.tensorflow.org/recommenders/examples/basic_retrieval). It knows nothing about
text: ids without a train event share the out-of-vocabulary row, so cold items all tie.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras
from tfrecs_llm.models.base import Model


@dataclass
class IdOnlyConfig:
    """Hyper-parameters of the tutorial (which trains 3 epochs; 10 follows DESIGN.md's table)."""

    embedding_dim: int = 32
    epochs: int = 10
    batch_size: int = 8192
    learning_rate: float = 0.1
    seed: int = 42

    def validate(self) -> "IdOnlyConfig":
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name != "seed" and not value > 0:
                raise ValueError(f"id_only.{field.name} must be > 0, got {value}")
        return self


class IdOnlyModel(Model):
    """``user_id: [batch]`` -> ``[batch, embedding_dim]`` and ``item_id: [batch]`` -> same."""

    def __init__(self, user_ids: np.ndarray, item_ids: np.ndarray, embedding_dim: int = 32) -> None:
        super().__init__()
        self.user_model = _id_tower(user_ids, embedding_dim)
        self.item_model = _id_tower(item_ids, embedding_dim)
        self.task = tfrs.tasks.Retrieval()

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.task(self.user_model(features["user_id"]), self.item_model(features["item_id"]))


def _id_tower(vocabulary: np.ndarray, embedding_dim: int) -> tf_keras.Sequential:
    return tf_keras.Sequential(
        [
            tf_keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
            # +1: row 0 is the out-of-vocabulary id.
            tf_keras.layers.Embedding(len(vocabulary) + 1, embedding_dim),
        ]
    )


def train_id_only(
    train: pd.DataFrame, config: IdOnlyConfig | None = None, verbose: bool = False
) -> IdOnlyModel:
    """Fits the tutorial model on ``train``'s ``(user_id, item_id)`` events."""
    config = (config or IdOnlyConfig()).validate()
    tf_keras.utils.set_random_seed(config.seed)
    users = train["user_id"].astype(str).to_numpy()
    items = train["item_id"].astype(str).to_numpy()
    model = IdOnlyModel(np.unique(users), np.unique(items), config.embedding_dim)
    model.compile(optimizer=tf_keras.optimizers.Adagrad(learning_rate=config.learning_rate))
    events = (
        tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items})
        .shuffle(len(users), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
    )
    if verbose:
        print(f"id_only: training {config.epochs} epochs on {len(users)} events")
    model.fit(events, epochs=config.epochs, verbose=2 if verbose else 0)
    return model


def id_only_scorer(
    train: pd.DataFrame,
    catalog_ids: Sequence[str] | np.ndarray,
    config: IdOnlyConfig | None = None,
    verbose: bool = False,
) -> Callable[[pd.DataFrame], np.ndarray]:
    """Trains the model; returns queries ``[n]`` rows (``user_id``) -> ``[n, num_items]`` dot
    products of user and item embeddings."""
    model = train_id_only(train, config, verbose)
    item_embeddings = model.item_model(tf.constant(np.asarray(catalog_ids, dtype=str))).numpy()

    def score(queries: pd.DataFrame) -> np.ndarray:
        users = model.user_model(tf.constant(queries["user_id"].astype(str).to_numpy())).numpy()
        return users @ item_embeddings.T

    return score
