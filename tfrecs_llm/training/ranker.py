"""Training the ranking head on lists retrieved by a trained two-tower model; saving and
restoring it.

Takes validated training events (``Recommender.train_ranker`` validates them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from tfrecs_llm.config import RankingConfig
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.models.ranking import RankingModel
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.ranking.lists import keep_lists_with_positives, retrieve_candidates, rows_before_each_event
from tfrecs_llm.ranking.scorer import CandidateScorer
from tfrecs_llm.ranking.topics import ItemTables, item_tables

_TABLES_FILE = "ranker_tables.npz"
_SCORER_CHECKPOINT = "ranker/scorer"


def training_lists(
    retriever: Retriever, events: pd.DataFrame, config: RankingConfig, history: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """Lists from each user's most recent ``events``: top-K retrieved, when the positive is among
    them (labels mark it). Each list's query is the user as of just before its event: the
    user text and recent items from ``history`` (the events retrieval trained on) and the
    earlier ``events``."""
    combined = events if history is None else pd.concat([history, events], ignore_index=True)
    first = len(combined) - len(events)
    row_of = retriever.catalog.row_index()
    texts = retriever.builder.for_events(combined).tolist()
    own = combined.iloc[first:]
    recent = own.sort_values("timestamp", kind="stable").groupby("user_id", sort=False).tail(
        config.max_events_per_user
    )
    before = rows_before_each_event(combined, row_of)
    positions = first + pd.Series(np.arange(len(own)), index=own.index)[recent.index].to_numpy()
    histories = [list(retriever.catalog.item_ids[before[p]]) for p in positions]
    query_embeddings = retriever.query_embeddings([texts[p] for p in positions], history_item_ids=histories)
    lists = retrieve_candidates(
        query_embeddings,
        retriever.item_embeddings(),
        [before[p] for p in positions],
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
    retriever: Retriever,
    events: pd.DataFrame,
    config: RankingConfig,
    seed: int = 42,
    verbose: bool = True,
    history: pd.DataFrame | None = None,
) -> tuple[RankingModel, ItemTables]:
    """Fits a RankingModel with ``L_rel + lambda_div * L_div`` on lists for ``events`` (queries
    built with ``history``, see :func:`training_lists`)."""
    config.validate()
    tf.keras.utils.set_random_seed(seed)
    item_embeddings = retriever.item_embeddings()
    seen = events if history is None else pd.concat([history, events], ignore_index=True)
    tables = item_tables(retriever.catalog.items, item_embeddings, seen, config)
    lists = training_lists(retriever, events, config, history)
    if not len(lists["labels"]):
        raise ValueError(
            f"none of the {len(events)} ranker event(s) has its item among the top "
            f"{config.num_candidates} retrieved (ranking.num_candidates); the ranker has nothing to learn from"
        )
    model = build_ranker(item_embeddings, tables, config, retriever.config.train.temperature)
    model.scorer.normalize.adapt(model.scorer.scalar_features({k: tf.constant(v) for k, v in lists.items()}))
    dataset = make_dataset(lists, config.batch_size, seed=seed)
    model.fit(dataset, epochs=config.epochs, verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0)
    return model, tables


def save_ranker(directory: Path, ranker: RankingModel, tables: ItemTables) -> None:
    """Writes the ranker's item tables and scorer weights into a model directory."""
    np.savez(directory / _TABLES_FILE, scalars=tables.scalars, topics=tables.topics,
             topic_names=np.array(tables.topic_names))
    tf.train.Checkpoint(scorer=ranker.scorer).write(str(directory / _SCORER_CHECKPOINT))


def has_ranker(directory: Path) -> bool:
    """Whether ``save_ranker`` wrote a ranker into the model directory ``directory``."""
    return (directory / _TABLES_FILE).is_file()


def restore_ranker(
    directory: Path, item_embeddings: np.ndarray, config: RankingConfig, retrieval_temperature: float
) -> tuple[RankingModel, ItemTables]:
    """The ranker ``save_ranker`` wrote into ``directory``, over ``item_embeddings: [num_items,
    d]`` of the same catalog."""
    stored = np.load(directory / _TABLES_FILE)
    tables = ItemTables(stored["scalars"], stored["topics"], stored["topic_names"].tolist())
    ranker = build_ranker(item_embeddings, tables, config, retrieval_temperature)
    dummy = {
        "query_embedding": tf.zeros([1, item_embeddings.shape[1]]),
        "candidate_rows": tf.zeros([1, 2], tf.int32),
        "retrieval_score": tf.zeros([1, 2]),
    }
    ranker.scorer.normalize.build([None, None, 4])
    ranker.scorer(dummy)
    checkpoint = tf.train.Checkpoint(scorer=ranker.scorer)
    checkpoint.read(str(directory / _SCORER_CHECKPOINT)).assert_existing_objects_matched()
    ranker.scorer.normalize.finalize_state()  # mean/variance are derived from restored state
    return ranker, tables
