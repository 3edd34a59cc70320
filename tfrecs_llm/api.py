"""The Python API: train from DataFrames or files, recommend, evaluate, save/load, export."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrecs_llm import __version__
from tfrecs_llm.config import Config, IndexConfig, RankingConfig
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.schema import (
    load_interactions,
    load_items,
    validate_interactions,
    validate_items,
)
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.distribute import check_created_in_scope, make_strategy, shard_by_data
from tfrecs_llm.evaluation import evaluate_scores, popularity_scorer
from tfrecs_llm.index import IndexChoice, build_index, choose_index, sample_texts, tunes_search
from tfrecs_llm.models import TwoTowerModel
from tfrecs_llm.models.ranking import RankingModel
from tfrecs_llm.ranking.lists import ItemTables
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.text.finetune import apply_finetune_mode, tokenize_in_pipeline
from tfrecs_llm.training import Catalog, build_model, example_features, fit, training_examples

if TYPE_CHECKING:
    from tfrecs_llm.ranking.stage import RankingStage

TableLike = pd.DataFrame | str | Path
Recommendations = list[list[tuple[str, float]]]
"""Per user, ``(item_id, score)`` pairs, best first."""


def _items_table(items: TableLike) -> pd.DataFrame:
    if isinstance(items, pd.DataFrame):
        return validate_items(items)
    return load_items(items)


def _interactions_table(interactions: TableLike, items: pd.DataFrame) -> pd.DataFrame:
    if isinstance(interactions, pd.DataFrame):
        return validate_interactions(interactions, items)
    return load_interactions(interactions, items)


class Recommender:
    """A trained text two-tower recommender over a catalog.

    Build one with :meth:`train` or :meth:`load`; then :meth:`recommend`, :meth:`evaluate`,
    :meth:`save` and :meth:`export`.
    """

    def __init__(
        self, config: Config, encoder: TextEncoder, catalog: Catalog, model: TwoTowerModel
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.catalog = catalog
        self.model = model
        self.builder = UserTextBuilder.from_config(catalog.items, config.data)
        self._index: tuple[object, IndexChoice] | None = None
        self._stage = None
        # Frozen BERT: pooled text embeddings are a pure function of the text, so they are cached.
        self._pooled_cache: dict[str, np.ndarray] = {}
        # Training user texts (a seeded sample): ScaNN is tuned on their query embeddings, the
        # distribution real queries come from, rather than on perturbed items.
        self.query_sample: list[str] = []
        self.ranker: RankingModel | None = None
        self.ranker_tables: ItemTables | None = None
        self._encode_queries = tf.function(
            lambda texts: model.query_tower({"user_text": texts}, training=False),
            input_signature=[tf.TensorSpec([None], tf.string)],
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
        (``tfrecs_llm.distribute.is_chief(strategy)``) should save the result.
        """
        config = (config or Config()).validate()
        # First: a multi-worker strategy must be set up before TensorFlow runs anything.
        strategy = make_strategy(config.train.strategy)
        tf.keras.utils.set_random_seed(config.train.seed)
        items_df = _items_table(items)
        events = _interactions_table(interactions, items_df)
        # BERT's (and LoRA's) variables are trained, so they must be the strategy's mirrored ones.
        with strategy.scope():
            if encoder is None:
                encoder = TextEncoder.from_config_section(config.encoder)
            apply_finetune_mode(encoder, config.encoder, for_training=True)
        check_created_in_scope(encoder.weights, strategy, "the text encoder")
        pretrained_items = config.model.item_text_encoder == "pretrained"
        catalog = Catalog.build(items_df, encoder if pretrained_items else None, verbose)
        # An id without training events would keep its random initial embedding: such items
        # use the OOV bucket, which item-id dropout trains to stand for "known by text alone".
        catalog.id_vocabulary = catalog.item_ids[np.isin(catalog.item_ids, events["item_id"].astype(str))]
        builder = UserTextBuilder.from_config(catalog.items, config.data)
        examples = training_examples(events, builder, config)
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
            fit(model, shard_by_data(dataset), config, checkpoint_dir=checkpoint_dir, verbose=verbose)
        recommender = cls(config, encoder, catalog, model)
        if "user_text_embedding" in features:
            recommender._pooled_cache = dict(zip(examples["user_text"], features["user_text_embedding"]))
        recommender.query_sample = sample_texts(examples["user_text"], config.index.scann_tuning_queries, config.train.seed)
        return recommender

    def user_texts(
        self,
        user_ids: Sequence[str],
        interactions: pd.DataFrame,
        free_texts: Sequence[str] | None = None,
    ) -> list[str]:
        """The user text of each user as of now, built as in training."""
        events = validate_interactions(interactions, self.catalog.items)
        return self.builder.for_users(events, list(user_ids), free_texts)

    def query_embeddings(self, user_texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """``[len(user_texts), embedding_dim]`` unit-norm query embeddings from raw text."""
        if self.config.encoder.trainable == "frozen" and len(user_texts):
            return self.model.query_tower.project(self._pooled(list(user_texts))).numpy()
        parts = [
            self._encode_queries(tf.constant(list(user_texts[i : i + batch_size]), tf.string)).numpy()
            for i in range(0, len(user_texts), batch_size)
        ]
        if not parts:
            return np.zeros((0, self.config.model.embedding_dim), np.float32)
        return np.concatenate(parts)

    def _pooled(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._pooled_cache))
        if missing:
            fresh = embed_texts(self.encoder, missing, verbose=len(missing) > 2000, description="embedding user texts")
            self._pooled_cache.update(zip(missing, fresh))
        return np.stack([self._pooled_cache[t] for t in texts])

    def item_embeddings(self) -> np.ndarray:
        """``[num_items, embedding_dim]`` unit-norm item embeddings, in catalog order."""
        dataset = make_dataset(self.catalog.features(), batch_size=1024, shuffle=False)
        return np.concatenate(
            [self.model.item_tower(batch, training=False).numpy() for batch in dataset]
        )

    def score(self, user_texts: Sequence[str]) -> np.ndarray:
        """Dot-product scores ``[len(user_texts), num_items]`` against the whole catalog."""
        return self.query_embeddings(user_texts) @ self.item_embeddings().T

    @property
    def index(self) -> tuple[object, IndexChoice]:
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
        return self.query_embeddings(self.query_sample)

    def recommend(
        self,
        user_texts: Sequence[str],
        k: int = 10,
        exclude_item_ids: Sequence[Sequence[str]] | None = None,
        diversity: float = 0.0,
    ) -> Recommendations:
        """Top-``k`` items per user text, never returning that user's ``exclude_item_ids``.

        With a trained ranker, the top ``ranking.num_candidates`` retrieved items are re-ordered
        by it; ``diversity`` in [0, 1] then re-ranks with MMR (0 = pure relevance).
        """
        exclude = self._padded(user_texts, exclude_item_ids, "exclude_item_ids")
        available = len(self.catalog.item_ids) - exclude.shape[1]
        if not 1 <= k <= available:
            raise ValueError(f"k must be between 1 and {available} (catalog size minus exclusions), got {k}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {diversity}")
        if len(user_texts) == 0:
            return []
        queries = tf.constant(self.query_embeddings(user_texts))
        outputs = self.stage.recommend(queries, tf.constant(exclude), k, diversity)
        return [
            [(i.decode(), float(s)) for i, s in zip(row_ids, row_scores)]
            for row_ids, row_scores in zip(outputs["item_ids"].numpy(), outputs["scores"].numpy())
        ]

    def explain(
        self,
        user_texts: Sequence[str],
        recommendations: Recommendations,
        history_item_ids: Sequence[Sequence[str]] | None = None,
    ) -> list[list[str]]:
        """A grounded reason per recommended item: the most similar history item ("Because you
        liked X") and the words its description shares with the user text ("" if neither)."""
        history = self._padded(user_texts, history_item_ids, "history_item_ids")
        row_of = self.catalog.row_index()
        rows = tf.constant([[row_of[i] for i, _ in recs] for recs in recommendations], tf.int32)
        reasons = self.stage.reasons(rows, tf.constant(history), tf.constant(list(user_texts)))
        return [[r.decode() for r in row] for row in reasons.numpy()]

    @staticmethod
    def _padded(
        user_texts: Sequence[str], lists: Sequence[Sequence[str]] | None, name: str
    ) -> np.ndarray:
        if isinstance(user_texts, str):
            raise TypeError("user_texts must be a list of strings, got a single string")
        if lists is not None and len(lists) != len(user_texts):
            raise ValueError(f"{name} has {len(lists)} lists for {len(user_texts)} user texts")
        lists = lists or [[] for _ in user_texts]
        padded = np.full((len(user_texts), max((len(e) for e in lists), default=0)), "", dtype=object)
        for row, values in enumerate(lists):
            padded[row, : len(values)] = [str(v) for v in values]
        return padded.astype(bytes)

    @property
    def stage(self) -> "RankingStage":
        """Retrieval index + ranker + MMR + explanations over the current catalog."""
        if self._stage is None:
            self._stage = self.ranking_stage(self.index[0], self.item_embeddings())
        return self._stage

    def ranking_stage(
        self, index: tf.keras.layers.Layer, item_embeddings: np.ndarray
    ) -> "RankingStage":
        """A RankingStage over ``index`` (a top-k layer over ``item_embeddings: [num_items, d]``
        of this catalog) and the ranker."""
        from tfrecs_llm.ranking.stage import RankingStage

        return RankingStage(
            index,
            self.ranker.scorer if self.ranker is not None else None,
            self.catalog.item_ids,
            item_embeddings,
            self.catalog.items["title"].astype(str).tolist(),
            self.catalog.texts,
            self.config.ranking.num_candidates,
        )

    def train_ranker(
        self, train: pd.DataFrame, config: RankingConfig | None = None, verbose: bool = True
    ) -> RankingModel:
        """Fits the ranking head on lists retrieved for ``train`` events (relevance + diversity)."""
        from tfrecs_llm.ranking.trainer import train_ranker

        config = config or self.config.ranking
        train = validate_interactions(train, self.catalog.items)
        self.ranker, self.ranker_tables = train_ranker(self, train, config, self.config.train.seed, verbose)
        self._stage = None
        self.config = dataclasses.replace(self.config, ranking=config)
        return self.ranker

    def evaluate_ranking(
        self, train: pd.DataFrame, test: pd.DataFrame, k: int = 10
    ) -> dict[str, dict[str, float]]:
        """Top-k quality and diversity of retrieval order vs the ranker's order on the same lists."""
        from tfrecs_llm.ranking.trainer import evaluate_ranking

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
        """
        train = validate_interactions(train, self.catalog.items)
        test = validate_interactions(test, self.catalog.items)
        item_embeddings = self.item_embeddings()
        ids = self.catalog.item_ids
        return {
            "model": evaluate_scores(
                lambda queries: self.query_embeddings(queries["user_text"].tolist()) @ item_embeddings.T,
                ids, train, test, self.builder, ks,
            ),
            "popularity": evaluate_scores(popularity_scorer(train, ids), ids, train, test, self.builder, ks),
        }

    def export(
        self,
        base_path: str | Path,
        model_name: str,
        version: int | None = None,
        index_kind: str | None = None,
        k: int | None = None,
    ) -> Path:
        """Exports a TF Serving version under ``base_path/model_name/``; see ``export_tf_serving``."""
        from tfrecs_llm.export import export_tf_serving

        return export_tf_serving(self, base_path, model_name, version, index_kind, k)

    def save(self, path: str | Path) -> Path:
        """Writes config, catalog, cached item-text embeddings and weights to a directory.

        The directory is written aside and renamed into place, so a crash never leaves a
        half-written model behind.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            self.config.save(staging / "config.json")
            self.catalog.items.to_csv(staging / "items.csv", index=False)
            if self.catalog.text_embeddings is not None:
                np.save(staging / "item_text_embeddings.npy", self.catalog.text_embeddings)
            (staging / "id_vocabulary.txt").write_text("\n".join(self.catalog.id_vocabulary) + "\n")
            (staging / "query_sample.json").write_text(json.dumps(self.query_sample))
            self._weights_checkpoint(self.model).write(str(staging / "weights" / "model"))
            if self.ranker is not None:
                tables = self.ranker_tables
                np.savez(staging / "ranker_tables.npz", scalars=tables.scalars, topics=tables.topics,
                         topic_names=np.array(tables.topic_names))
                tf.train.Checkpoint(scorer=self.ranker.scorer).write(str(staging / "ranker" / "scorer"))
            (staging / "manifest.json").write_text(
                json.dumps({"format": "tfrecs_llm.Recommender", "version": __version__}, indent=2)
            )
            if path.exists():
                shutil.rmtree(path)
            staging.rename(path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return path

    @staticmethod
    def _weights_checkpoint(model: TwoTowerModel) -> tf.train.Checkpoint:
        """The towers' weights (BERT included), without optimizer state."""
        return tf.train.Checkpoint(query_tower=model.query_tower, item_tower=model.item_tower)

    @classmethod
    def load(cls, path: str | Path, encoder: TextEncoder | None = None) -> "Recommender":
        """Loads a directory written by :meth:`save`."""
        path = Path(path)
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{path} is not a saved tfrecs_llm model (no manifest.json); expected a directory "
                "written by Recommender.save or `tfrecs-llm train --output`"
            )
        config = Config.load(path / "config.json")
        items = load_items(path / "items.csv")
        if encoder is None:
            encoder = TextEncoder.from_config_section(config.encoder)
        apply_finetune_mode(encoder, config.encoder)
        embeddings_file = path / "item_text_embeddings.npy"
        catalog = Catalog.build(items, None, verbose=False)
        if embeddings_file.is_file():
            catalog.text_embeddings = np.load(embeddings_file)
        catalog.id_vocabulary = np.array((path / "id_vocabulary.txt").read_text().splitlines(), dtype=str)
        model = build_model(config, encoder, catalog)
        model.item_tower(make_dataset(catalog.features(np.arange(1)), 1, shuffle=False).get_single_element())
        model.query_tower({"user_text_embedding": tf.zeros([1, encoder.hidden_dim])})
        cls._weights_checkpoint(model).read(str(path / "weights" / "model")).assert_existing_objects_matched()
        recommender = cls(config, encoder, catalog, model)
        if (path / "query_sample.json").is_file():  # models saved by earlier versions have none
            recommender.query_sample = json.loads((path / "query_sample.json").read_text())
        if (path / "ranker_tables.npz").is_file():
            recommender._load_ranker(path)
        return recommender

    def _load_ranker(self, path: Path) -> None:
        from tfrecs_llm.ranking.trainer import build_ranker

        stored = np.load(path / "ranker_tables.npz")
        tables = ItemTables(stored["scalars"], stored["topics"], stored["topic_names"].tolist())
        ranker = build_ranker(self.item_embeddings(), tables, self.config.ranking, self.config.train.temperature)
        dummy = {
            "query_embedding": tf.zeros([1, self.config.model.embedding_dim]),
            "candidate_rows": tf.zeros([1, 2], tf.int32),
            "retrieval_score": tf.zeros([1, 2]),
        }
        ranker.scorer.normalize.build([None, None, 4])
        ranker.scorer(dummy)
        checkpoint = tf.train.Checkpoint(scorer=ranker.scorer)
        checkpoint.read(str(path / "ranker" / "scorer")).assert_existing_objects_matched()
        ranker.scorer.normalize.finalize_state()  # mean/variance are derived from restored state
        self.ranker, self.ranker_tables = ranker, tables
