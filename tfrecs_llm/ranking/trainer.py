"""Training and evaluating the ranking head on lists retrieved by a trained Recommender."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from tfrecs_llm.config import RankingConfig
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.evaluation import held_out_queries
from tfrecs_llm.metrics import ranking_metrics
from tfrecs_llm.metrics.diversity import category_entropy_at_k, intra_list_diversity
from tfrecs_llm.models.ranking import CandidateScorer, RankingModel
from tfrecs_llm.ranking.lists import (
    ItemTables,
    item_tables,
    keep_lists_with_positives,
    retrieve_candidates,
    rows_before_each_event,
)

if TYPE_CHECKING:
    from tfrecs_llm.api import Recommender


def training_lists(
    recommender: "Recommender", train: pd.DataFrame, config: RankingConfig
) -> dict[str, np.ndarray]:
    """Lists from each user's most recent training events: top-K retrieved, when the positive is
    among them (labels mark it)."""
    row_of = recommender.catalog.row_index()
    texts = recommender.builder.for_events(train)
    recent = train.sort_values("timestamp", kind="stable").groupby("user_id", sort=False).tail(
        config.max_events_per_user
    )
    history = rows_before_each_event(train, row_of)
    positions = pd.Series(np.arange(len(train)), index=train.index)[recent.index].to_numpy()
    query_embeddings = recommender.query_embeddings(texts.loc[recent.index].tolist())
    lists = retrieve_candidates(
        query_embeddings,
        recommender.item_embeddings(),
        [history[p] for p in positions],
        config.num_candidates,
        positive_rows=row_of.reindex(recent["item_id"].astype(str)).to_numpy(int),
    )
    lists["query_embedding"] = query_embeddings
    return keep_lists_with_positives(lists)


def build_ranker(
    item_embeddings: np.ndarray,
    tables: ItemTables,
    config: RankingConfig,
    retrieval_temperature: float = 1.0,
) -> RankingModel:
    """A compiled RankingModel over the catalog's embeddings and side tables."""
    scorer = CandidateScorer(
        item_embeddings, tables.scalars, tables.topics, config.hidden_units, retrieval_temperature
    )
    model = RankingModel(scorer, config)
    model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    return model


def train_ranker(
    recommender: "Recommender",
    train: pd.DataFrame,
    config: RankingConfig,
    seed: int = 42,
    verbose: bool = True,
) -> tuple[RankingModel, ItemTables]:
    """Fits a RankingModel with ``L_rel + lambda_div * L_div`` on lists from ``train`` only."""
    config.validate()
    tf.keras.utils.set_random_seed(seed)
    item_embeddings = recommender.item_embeddings()
    tables = item_tables(recommender.catalog.items, item_embeddings, train, config)
    lists = training_lists(recommender, train, config)
    model = build_ranker(item_embeddings, tables, config, recommender.config.train.temperature)
    model.scorer.normalize.adapt(model.scorer.scalar_features({k: tf.constant(v) for k, v in lists.items()}))
    dataset = make_dataset(lists, config.batch_size, seed=seed)
    model.fit(dataset, epochs=config.epochs, verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0)
    return model, tables


def evaluate_ranking(
    recommender: "Recommender",
    ranker: RankingModel | None,
    train: pd.DataFrame,
    test: pd.DataFrame,
    num_candidates: int,
    k: int = 10,
) -> dict[str, float]:
    """NDCG/Recall@k, category entropy@k and ILD@k of the top k of each test list.

    Lists are the top ``num_candidates`` retrieved items (train items excluded); with
    ``ranker=None`` they keep retrieval order. A held-out item outside the list counts as a miss.
    """
    if k > num_candidates:
        raise ValueError(f"k={k} is larger than the candidate list ({num_candidates})")
    texts, excluded, targets = held_out_queries(
        recommender.builder, recommender.catalog.row_index(), train, test
    )
    query_embeddings = recommender.query_embeddings(texts)
    item_embeddings = recommender.item_embeddings()
    lists = retrieve_candidates(query_embeddings, item_embeddings, excluded, num_candidates)
    scores = lists["retrieval_score"]
    if ranker is not None:
        scores = score_lists(ranker, {"query_embedding": query_embeddings, **lists})
    categories = recommender.catalog.items["category"].astype(str).to_numpy()
    return list_metrics(lists["candidate_rows"], scores, targets, categories, item_embeddings, k)


def score_lists(ranker: RankingModel, features: dict[str, np.ndarray]) -> np.ndarray:
    """The ranker's scores ``[num_lists, list_size]``."""
    return ranker.predict(make_dataset(features, 512, shuffle=False), verbose=0)


def list_metrics(
    candidate_rows: np.ndarray,
    scores: np.ndarray,
    target_rows: np.ndarray,
    item_categories: np.ndarray,
    item_embeddings: np.ndarray,
    k: int = 10,
) -> dict[str, float]:
    """Orders each list by ``scores`` and measures its top k.

    ``candidate_rows, scores: [num_lists, list_size]``; ``target_rows: [num_lists]`` (a target
    outside its list is a miss). Returns Recall@k, NDCG@k, MRR, category entropy@k and ILD@k.
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked_rows = np.take_along_axis(candidate_rows, order, axis=1)
    in_list = ranked_rows == target_rows[:, None]
    ranks = np.where(in_list.any(axis=1), in_list.argmax(axis=1), len(item_embeddings))
    top = ranked_rows[:, :k]
    metrics = ranking_metrics(ranks, ks=(k,))
    metrics[f"category_entropy@{k}"] = category_entropy_at_k(top, item_categories)
    metrics[f"ild@{k}"] = intra_list_diversity(top, item_embeddings)
    return metrics
