"""A trained two-tower model with its catalog and encoder: raw user texts in, embeddings out.

What retrieval, evaluation, the ranker's training and export read of a trained model. The
front class ``tfrecs_llm.Recommender`` is a ``Retriever`` plus the ranking head, the serving
stage and persistence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrecs_llm.config import Config, IndexConfig
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.schema import validate_interactions
from tfrecs_llm.data.sequences import padded_rows
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.index import choose_index, tunes_search
from tfrecs_llm.models.retrieval import TwoTowerModel
from tfrecs_llm.models.sequential import SequentialTwoTowerModel
from tfrecs_llm.text.encoder import TextEncoder, embed_texts

_QUIET_EMBEDDING_BELOW = 2000
"""Embedding this many user texts or fewer shows no progress bar (it takes seconds)."""


class Retriever:
    """A trained ``TwoTowerModel`` over a ``Catalog``.

    Args:
        config: the configuration it was trained with.
        encoder: the query tower's BERT (the same object as ``model.query_tower.encoder``).
        catalog: the items it retrieves from, in row order.
        model: the trained two-tower model.
        query_sample: a seeded sample of training user texts; ScaNN tunes its search on their
            query embeddings, the distribution real queries come from.
        history_sample: for a sequential query tower, a seeded sample of users' recent item
            ids (oldest first) that go with ``query_sample`` (same length).
        training_history: Keras's per-epoch logs of the training run (``{"loss": [...]}``),
            empty for a loaded model.
        pooled_cache: user text -> pooled BERT output ``[hidden_dim]``, for a frozen encoder
            (its pooled embeddings are a pure function of the text).
    """

    def __init__(
        self,
        config: Config,
        encoder: TextEncoder,
        catalog: Catalog,
        model: TwoTowerModel | SequentialTwoTowerModel,
        query_sample: Sequence[str] = (),
        pooled_cache: Mapping[str, np.ndarray] | None = None,
        history_sample: Sequence[Sequence[str]] = (),
        training_history: Mapping[str, list[float]] | None = None,
    ) -> None:
        self.config = config
        self.training_history = dict(training_history or {})
        self.encoder = encoder
        self.catalog = catalog
        self.model = model
        self.query_sample = list(query_sample)
        self.history_sample = [list(h) for h in history_sample]
        self.sequential = config.model.query_history == "sequence"
        self._item_table: np.ndarray | None = None
        self.builder = UserTextBuilder.from_config(
            catalog.items, config.data, titles=config.model.query_history == "text"
        )
        self.pooled_cache: dict[str, np.ndarray] = dict(pooled_cache or {})
        self._encode_queries = None if self.sequential else tf.function(
            lambda texts: model.query_tower({"user_text": texts}, training=False),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )

    def user_texts(
        self,
        user_ids: Sequence[str],
        interactions: pd.DataFrame,
        free_texts: Sequence[str] | None = None,
    ) -> list[str]:
        """The user text of each user as of now, built as in training."""
        events = validate_interactions(interactions, self.catalog.items)
        return self.builder.for_users(events, list(user_ids), free_texts)

    def query_embeddings(
        self,
        user_texts: Sequence[str],
        batch_size: int = 256,
        history_item_ids: Sequence[Sequence[str]] | None = None,
    ) -> np.ndarray:
        """``[len(user_texts), embedding_dim]`` unit-norm query embeddings from raw text (and,
        for a sequential query tower, each user's recent item ids, oldest first; without them
        the query reads the text alone)."""
        if self.sequential:
            return self._sequence_queries(list(user_texts), history_item_ids, batch_size)
        if self.config.encoder.trainable == "frozen" and len(user_texts):
            return self.model.query_tower.project(self.pooled_embeddings(list(user_texts))).numpy()
        parts = [
            self._encode_queries(tf.constant(list(user_texts[i : i + batch_size]), tf.string)).numpy()
            for i in range(0, len(user_texts), batch_size)
        ]
        if not parts:
            return np.zeros((0, self.config.model.embedding_dim), np.float32)
        return np.concatenate(parts)

    def pooled_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), hidden_dim]`` pooled BERT output, cached per distinct text."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.pooled_cache))
        if missing:
            fresh = embed_texts(
                self.encoder, missing, verbose=len(missing) > _QUIET_EMBEDDING_BELOW,
                description="embedding user texts",
            )
            self.pooled_cache.update(zip(missing, fresh))
        return np.stack([self.pooled_cache[t] for t in texts])

    def _sequence_queries(
        self, texts: list[str], histories: Sequence[Sequence[str]] | None, batch_size: int
    ) -> np.ndarray:
        if histories is not None and len(histories) != len(texts):
            raise ValueError(f"history_item_ids has {len(histories)} lists for {len(texts)} user texts")
        if not texts:
            return np.zeros((0, self.config.model.embedding_dim), np.float32)
        rows = padded_rows(histories or [[]] * len(texts), self.catalog.row_index(), self.config.model.history_length)
        table = np.concatenate([np.zeros((1, self.config.model.embedding_dim), np.float32), self.item_embeddings()])
        pooled = self.pooled_embeddings(texts)
        tower = self.model.query_tower
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = rows[start : start + batch_size]
            features = {"history_embeddings": tf.constant(table[batch]), "history_padding": tf.constant(batch > 0),
                        "user_text_embedding": tf.constant(pooled[start : start + batch_size])}
            parts.append(tower(features, training=False).numpy())
        return np.concatenate(parts)

    def item_embeddings(self) -> np.ndarray:
        """``[num_items, embedding_dim]`` unit-norm item embeddings, in catalog order (computed
        once; ``forget_item_embeddings`` after the item tower changes)."""
        if self._item_table is None:
            dataset = make_dataset(self.catalog.features(), batch_size=1024, shuffle=False)
            self._item_table = np.concatenate(
                [self.model.item_tower(batch, training=False).numpy() for batch in dataset]
            )
        return self._item_table

    def forget_item_embeddings(self) -> None:
        """Drops the cached item embeddings (the item tower was trained further)."""
        self._item_table = None

    def score(
        self, user_texts: Sequence[str], history_item_ids: Sequence[Sequence[str]] | None = None
    ) -> np.ndarray:
        """Dot-product scores ``[len(user_texts), num_items]`` against the whole catalog."""
        return self.query_embeddings(user_texts, history_item_ids=history_item_ids) @ self.item_embeddings().T

    def tuning_queries(self, index_config: IndexConfig) -> np.ndarray | None:
        """``[len(query_sample), embedding_dim]`` query embeddings of the training user-text
        sample, which ScaNN tunes its search on; None when no ScaNN index will be tuned (exact
        search needs none) or the model has no sample (then ScaNN tunes on perturbed items)."""
        if (
            not self.query_sample
            or not tunes_search(index_config)
            or choose_index(len(self.catalog.item_ids), index_config).kind != "scann"
        ):
            return None
        histories = self.history_sample if self.sequential and self.history_sample else None
        return self.query_embeddings(self.query_sample, history_item_ids=histories)
