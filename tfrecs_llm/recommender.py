"""The front class: train from DataFrames or files, recommend, explain, evaluate, save/load, export.

Each method validates what the user gave (tables, arguments) and delegates to the module that
owns the work: ``training`` (two-tower, ranker, updates, persistence), ``ranking.stage``
(retrieve -> rank -> MMR -> reasons), ``evaluation`` and ``export``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrecs_llm.config import Config, RankingConfig
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.events import positive_events
from tfrecs_llm.data.schema import load_interactions, load_items, validate_interactions, validate_items
from tfrecs_llm.data.user_requests import padded_lists, recommendations_frame, user_requests
from tfrecs_llm.evaluation.quick import model_and_popularity
from tfrecs_llm.evaluation.ranking import evaluate_ranking
from tfrecs_llm.export.tf_serving import export_tf_serving
from tfrecs_llm.index import IndexChoice, build_index
from tfrecs_llm.models.ranking import RankingModel
from tfrecs_llm.models.retrieval import TwoTowerModel
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.ranking.stage import RankingStage, build_stage
from tfrecs_llm.ranking.topics import ItemTables
from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.training.persistence import load_model_dir, read_state, save_model_dir
from tfrecs_llm.training.ranker import train_ranker
from tfrecs_llm.training.retrieval import train_two_tower
from tfrecs_llm.training.updates import extend_catalog, fine_tune
from tfrecs_llm.types import Recommendations, TableLike

logger = logging.getLogger(__name__)


def _items_table(items: TableLike, source: str = "items") -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        return validate_items(items, source)
    return load_items(items)


def _interactions_table(interactions: TableLike, items: pd.DataFrame) -> pd.DataFrame:
    if isinstance(interactions, pd.DataFrame):
        return validate_interactions(interactions, items)
    return load_interactions(interactions, items)


class Recommender(Retriever):
    """A trained text two-tower recommender over a catalog, with an optional ranking head.

    Build one with :meth:`train` or :meth:`load`; then :meth:`recommend`, :meth:`explain`,
    :meth:`evaluate`, :meth:`save` and :meth:`export`. As a :class:`Retriever` it also gives
    query and item embeddings.

    Example::

        import tfrecs_llm
        from tfrecs_llm import Recommender, load_sample
        from tfrecs_llm.data.splits import leave_last_out

        items, events = load_sample()
        items = tfrecs_llm.validate_items(items)
        train, test = leave_last_out(tfrecs_llm.validate_interactions(events, items))
        model = Recommender.train(items, train)
        model.evaluate(train, test)          # Recall@10/100, NDCG, MRR vs popularity
        model.recommend(["I love stories about distant planets"], k=3)  # [[(item_id, score), ...]]
        model.export("saved_models", "demo")  # -> saved_models/demo/1, for TF Serving

    Args:
        config, encoder, catalog, model, query_sample, pooled_cache: as :class:`Retriever`.
        ranker: the trained ranking head and its item tables (``None``: retrieval order).
    """

    def __init__(
        self,
        config: Config,
        encoder: TextEncoder,
        catalog: Catalog,
        model: TwoTowerModel,
        query_sample: Sequence[str] = (),
        pooled_cache: Mapping[str, np.ndarray] | None = None,
        ranker: tuple[RankingModel, ItemTables] | None = None,
        history_sample: Sequence[Sequence[str]] = (),
        training_history: Mapping[str, list[float]] | None = None,
    ) -> None:
        super().__init__(config, encoder, catalog, model, query_sample, pooled_cache, history_sample, training_history)
        self.ranker, self.ranker_tables = ranker if ranker is not None else (None, None)
        self.last_event_id = 0
        """The last feedback event ``update`` trained on (saved with the model)."""
        self._index: tuple[tf.keras.layers.Layer, IndexChoice] | None = None
        self._stage: RankingStage | None = None

    @classmethod
    def _from_retriever(
        cls, retriever: Retriever, ranker: tuple[RankingModel, ItemTables] | None = None
    ) -> "Recommender":
        return cls(
            retriever.config, retriever.encoder, retriever.catalog, retriever.model,
            retriever.query_sample, retriever.pooled_cache, ranker, retriever.history_sample,
            retriever.training_history,
        )

    @classmethod
    def train(
        cls,
        items: TableLike,
        interactions: TableLike,
        config: Config | None = None,
        checkpoint_dir: str | Path | None = None,
        encoder: TextEncoder | None = None,
        verbose: bool = True,
    ) -> "Recommender":
        """Validates the tables, caches text embeddings, and trains the two-tower model.

        ``interactions`` are all training events (split off evaluation events beforehand, e.g.
        with ``tfrecs_llm.data.splits.leave_last_out``). ``encoder`` overrides
        ``config.encoder.preset`` (tests pass a tiny BERT); under ``train.strategy`` other than
        ``default`` it must have been created inside that strategy's ``scope()``. With
        ``multi_worker`` every worker runs this same call; only the chief
        (``tfrecs_llm.training.distribute.is_chief(strategy)``) should save the result.

        Args:
            items: the catalog (``item_id, title, description[, category, tags, published_at]``).
            interactions: training events (``user_id, item_id, timestamp[, user_text, ...]``).
            config: every knob (default ``Config()``).
            checkpoint_dir: write a checkpoint every epoch and resume from the latest one there.
            encoder: a ``TextEncoder`` instead of ``config.encoder.preset``.
            verbose: progress bars and per-epoch logs.

        Raises:
            SchemaError (a ValueError): a bad table, naming the file, column and rows.
        """
        config = (config or Config()).validate()
        items_df = _items_table(items)
        events = _interactions_table(interactions, items_df)
        return cls._from_retriever(train_two_tower(items_df, events, config, checkpoint_dir, encoder, verbose))

    @classmethod
    def load(cls, path: str | Path, encoder: TextEncoder | None = None) -> "Recommender":
        """Loads a directory written by :meth:`save` (``encoder`` overrides its preset).

        Raises:
            FileNotFoundError: ``path`` is not a saved model (it has no manifest.json).
        """
        recommender = cls._from_retriever(*load_model_dir(path, encoder))
        recommender.last_event_id = int(read_state(path).get("last_event_id", 0))
        return recommender

    def save(self, path: str | Path) -> Path:
        """Writes config, catalog, cached item-text embeddings and weights to a directory.

        The directory is written aside and renamed into place, so a crash never leaves a
        half-written model behind. Returns ``path``.
        """
        return save_model_dir(path, self, self._ranker_parts(), {"last_event_id": self.last_event_id})

    def _ranker_parts(self) -> tuple[RankingModel, ItemTables] | None:
        return None if self.ranker is None else (self.ranker, self.ranker_tables)

    @property
    def index(self) -> tuple[tf.keras.layers.Layer, IndexChoice]:
        """The top-k layer over the catalog (built on first use) and why that kind."""
        if self._index is None:
            self._index = build_index(
                self.catalog.item_ids,
                self.item_embeddings(),
                self.config.index,
                k=max(self.config.index.k, self.config.ranking.num_candidates),
                query_embeddings=self.tuning_queries(self.config.index),
            )
        return self._index

    @property
    def stage(self) -> RankingStage:
        """Retrieval index + ranker + MMR + explanations over the current catalog."""
        if self._stage is None:
            scorer = self.ranker.scorer if self.ranker is not None else None
            self._stage = build_stage(
                self.index[0], scorer, self.catalog, self.item_embeddings(), self.config.ranking.num_candidates
            )
        return self._stage

    def recommend(
        self,
        user_texts: Sequence[str],
        k: int = 10,
        exclude_item_ids: Sequence[Sequence[str]] | None = None,
        diversity: float = 0.0,
        history_item_ids: Sequence[Sequence[str]] | None = None,
    ) -> Recommendations:
        """Top-``k`` items per user text, never returning that user's ``exclude_item_ids``.

        With a trained ranker, the top ``ranking.num_candidates`` retrieved items are re-ordered
        by it; ``diversity`` in [0, 1] then re-ranks with MMR (0 = pure relevance).

        Args:
            user_texts: ``[batch]`` raw user texts (free text and/or titles of recent items).
            k: items per user text.
            exclude_item_ids: per user text, item ids never to return (e.g. already seen).
            diversity: MMR weight in [0, 1].
            history_item_ids: per user text, the user's recent items, oldest first: a
                sequential query tower (``model.query_history="sequence"``) reads them.

        Returns:
            Per user text, ``k`` ``(item_id, score)`` pairs, best first.
        """
        exclude = padded_lists(user_texts, exclude_item_ids, "exclude_item_ids")
        available = len(self.catalog.item_ids) - exclude.shape[1]
        if not 1 <= k <= available:
            raise ValueError(f"k must be between 1 and {available} (catalog size minus exclusions), got {k}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {diversity}")
        if len(user_texts) == 0:
            return []
        queries = tf.constant(self.query_embeddings(user_texts, history_item_ids=history_item_ids))
        outputs = self.stage.recommend(queries, tf.constant(exclude), k, diversity)
        return [
            [(i.decode(), float(s)) for i, s in zip(row_ids, row_scores)]
            for row_ids, row_scores in zip(outputs["item_ids"].numpy(), outputs["scores"].numpy())
        ]

    def recommend_for_users(
        self,
        user_ids: Sequence[str],
        events: pd.DataFrame,
        k: int = 10,
        free_texts: Sequence[str] | None = None,
        as_frame: bool = False,
    ) -> Recommendations | pd.DataFrame:
        """What the server's ``/v1/users/{id}:recommend`` does, in process: each user's text and
        history as of now from ``events`` (built as in training), never an item they already
        have, and grounded reasons.

        Returns ``recommend``'s lists, or with ``as_frame`` a DataFrame of ``user_id, rank,
        item_id, title, score, reason`` (ranks from 1).
        """
        events = validate_interactions(events, self.catalog.items)
        request = user_requests(events, user_ids, self.builder, self.config.model.history_length, free_texts)
        recommendations = self.recommend(request.texts, k, request.exclusions, history_item_ids=request.histories)
        if not as_frame:
            return recommendations
        reasons = self.explain(request.texts, recommendations, history_item_ids=request.histories)
        return recommendations_frame(request.user_ids, recommendations, reasons, self.catalog)

    def explain(
        self,
        user_texts: Sequence[str],
        recommendations: Recommendations,
        history_item_ids: Sequence[Sequence[str]] | None = None,
    ) -> list[list[str]]:
        """A grounded reason per recommended item: the most similar history item ("Because you
        liked X") and the words its description shares with the user text ("" if neither).

        Args:
            user_texts: ``[batch]`` the texts ``recommendations`` were made for.
            recommendations: what :meth:`recommend` returned for them.
            history_item_ids: per user text, the items the user interacted with.

        Returns:
            ``[batch][k]`` reasons, aligned with ``recommendations``.
        """
        history = padded_lists(user_texts, history_item_ids, "history_item_ids")
        row_of = self.catalog.row_index()
        rows = tf.constant([[row_of[i] for i, _ in recs] for recs in recommendations], tf.int32)
        reasons = self.stage.reasons(rows, tf.constant(history), tf.constant(list(user_texts)))
        return [[r.decode() for r in row] for row in reasons.numpy()]

    def train_ranker(self, train: pd.DataFrame, config: RankingConfig | None = None, verbose: bool = True,
                     history: pd.DataFrame | None = None) -> RankingModel:
        """Fits the ranking head on lists retrieved for ``train`` events (events retrieval did not
        train on, e.g. each user's last); ``history`` (the events it trained on) gives each
        list's query the user as of just before its event. ``config``: ``config.ranking``."""
        config = config or self.config.ranking
        train = validate_interactions(train, self.catalog.items)
        if history is not None:
            history = validate_interactions(history, self.catalog.items)
        self.ranker, self.ranker_tables = train_ranker(self, train, config, self.config.train.seed, verbose, history)
        self._stage = None
        self.config = dataclasses.replace(self.config, ranking=config)
        return self.ranker

    def evaluate_ranking(
        self, train: pd.DataFrame, test: pd.DataFrame, k: int = 10
    ) -> dict[str, dict[str, float]]:
        """Top-k quality and diversity of retrieval order vs the ranker's order on the same lists.

        Returns:
            ``{"retrieval": metrics, "ranker": metrics}`` (``ranker`` only when one is trained),
            each with Recall@k, NDCG@k, MRR, category entropy@k and ILD@k.
        """
        train = validate_interactions(train, self.catalog.items)
        test = validate_interactions(test, self.catalog.items)
        size = self.config.ranking.num_candidates
        result = {"retrieval": evaluate_ranking(self, None, train, test, size, k)}
        if self.ranker is not None:
            result["ranker"] = evaluate_ranking(self, self.ranker, train, test, size, k)
        return result

    def evaluate(
        self, train: pd.DataFrame, test: pd.DataFrame, ks: Sequence[int] = (10, 100)
    ) -> dict[str, dict[str, float]]:
        """Held-out metrics of this model and of the popularity baseline (same protocol).

        ``tfrecs_llm.evaluate`` adds more baselines, intervals and a cold-start slice.

        Returns:
            ``{"model": metrics, "popularity": metrics}``, each with ``recall@k`` and ``ndcg@k``
            for every ``k`` in ``ks``, ``mrr`` and ``num_queries``.
        """
        train = validate_interactions(train, self.catalog.items)
        test = validate_interactions(test, self.catalog.items)
        return model_and_popularity(self, train, test, ks)

    def add_items(
        self, new_items: TableLike, item_encoder: TextEncoder | None = None, verbose: bool = False
    ) -> "Recommender":
        """A Recommender over the catalog plus ``new_items``, sharing the trained model (no training).

        ``new_items``: a DataFrame or a ``.csv`` / ``.parquet`` file with the catalog's columns
        (``item_id, title, description[, category, tags, published_at]``); every id must be new.
        ``item_encoder``: see ``tfrecs_llm.training.updates.extend_catalog``. The ranking head,
        if any, is dropped with a warning (its item tables are per catalog row); this
        Recommender is left unchanged.

        Raises:
            SchemaError (a ValueError): a bad table, naming the file, column and rows.
            ValueError: ids already in the catalog (named with their rows), or an empty table.
        """
        source = "new items" if isinstance(new_items, pd.DataFrame) else str(new_items)
        table = _items_table(new_items, source)
        catalog = extend_catalog(self, table, source, item_encoder, verbose)
        if self.ranker is not None:
            logger.warning(
                "dropping the ranking head: its item tables cover the %d items it was trained with; "
                "retrain it with Recommender.train_ranker to rank the %d-item catalog",
                len(self.catalog.item_ids), len(catalog.item_ids),
            )
        return Recommender(
            self.config, self.encoder, catalog, self.model, self.query_sample, self.pooled_cache,
            history_sample=self.history_sample,
        )

    def update(
        self,
        new_events: pd.DataFrame,
        all_events: pd.DataFrame,
        epochs: int = 1,
        checkpoint_dir: str | Path | None = None,
        verbose: bool = False,
    ) -> int:
        """Fine-tunes the retrieval model on ``new_events``, in place; returns how many events
        it trained on. See ``tfrecs_llm.training.updates.fine_tune``.

        Events whose ``type`` is a negative one (``dislike``) are ignored; the ranker, if any, is
        kept (its tables are per catalog row). The index and the serving stage are rebuilt from
        the new item embeddings on next use.

        Raises:
            SchemaError (a ValueError): events on items outside the catalog (named with their
                rows), or otherwise malformed events.
            ValueError: no positive new events, or ``epochs < 1``.
        """
        items = self.catalog.items
        new = positive_events(validate_interactions(new_events, items, source="new events"))
        history = positive_events(validate_interactions(all_events, items, source="event history"))
        trained = fine_tune(self, new, history, epochs, checkpoint_dir, verbose)
        # The item tower changed, so every item embedding did: rebuild what holds them.
        self.forget_item_embeddings()
        self._index = None
        self._stage = None
        return trained

    def export(
        self,
        base_path: str | Path,
        model_name: str,
        version: int | None = None,
        index_kind: str | None = None,
        k: int | None = None,
    ) -> Path:
        """Exports a TF Serving version under ``base_path/model_name/`` and returns its path;
        see ``tfrecs_llm.export.export_tf_serving``.

        Args:
            version: integer version (default: highest existing + 1).
            index_kind: ``auto``, ``scann`` or ``brute_force`` (default ``config.index.kind``).
            k: items returned per query (default ``config.index.k``).
        """
        scorer = self.ranker.scorer if self.ranker is not None else None
        return export_tf_serving(self, base_path, model_name, version, index_kind, k, ranker=scorer)
