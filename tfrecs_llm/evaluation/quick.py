"""The quick held-out check ``tfrecs-llm train`` prints: the model against popularity.

``tfrecs_llm.evaluate`` adds every baseline, intervals and a cold-start slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.evaluation.baselines.popularity import popularity_scorer
from tfrecs_llm.evaluation.protocol import evaluate_scores
from tfrecs_llm.models.retriever import Retriever


def model_and_popularity(
    retriever: Retriever, train: pd.DataFrame, test: pd.DataFrame, ks: Sequence[int] = (10, 100)
) -> dict[str, dict[str, float]]:
    """Recall@k, NDCG@k and MRR of ``retriever`` and of popularity on the validated ``test``
    events (each ranked among the whole catalog, the user's ``train`` items excluded)."""
    item_embeddings = retriever.item_embeddings()
    ids = retriever.catalog.item_ids

    def model_scores(queries: pd.DataFrame) -> np.ndarray:
        histories = queries["history_item_ids"].tolist()
        return retriever.query_embeddings(queries["user_text"].tolist(), history_item_ids=histories) @ item_embeddings.T

    return {
        "model": evaluate_scores(model_scores, ids, train, test, retriever.builder, ks),
        "popularity": evaluate_scores(popularity_scorer(train, ids), ids, train, test, retriever.builder, ks),
    }
