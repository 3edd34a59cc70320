"""The ranking head evaluated against retrieval order on the same retrieved lists.

Takes validated events (``Recommender.evaluate_ranking`` validates them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.evaluation.protocol import held_out_queries, train_histories
from tfrecs_llm.metrics import ranking_metrics
from tfrecs_llm.metrics.diversity import category_entropy_at_k, intra_list_diversity
from tfrecs_llm.models.ranking import RankingModel
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.ranking.lists import retrieve_candidates


def evaluate_ranking(
    retriever: Retriever,
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
        retriever.builder, retriever.catalog.row_index(), train, test
    )
    histories = train_histories(train, test["user_id"])
    query_embeddings = retriever.query_embeddings(texts, history_item_ids=histories)
    item_embeddings = retriever.item_embeddings()
    lists = retrieve_candidates(query_embeddings, item_embeddings, excluded, num_candidates)
    scores = lists["retrieval_score"]
    if ranker is not None:
        scores = score_lists(ranker, {"query_embedding": query_embeddings, **lists})
    categories = retriever.catalog.items["category"].astype(str).to_numpy()
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
