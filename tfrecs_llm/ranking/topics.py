"""Per-item side tables the ranker reads: popularity, age and topic distributions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrecs_llm.config import RankingConfig
from tfrecs_llm.losses import category_one_hot, fit_topic_centroids, soft_topic_assignments


@dataclass
class ItemTables:
    """Per-item side information the ranker gathers by catalog row.

    ``scalars: [num_items, 2]`` (log(1 + training events), age in years at ``reference_time``);
    ``topics: [num_items, num_topics]`` topic distributions; ``topic_names``.
    """

    scalars: np.ndarray
    topics: np.ndarray
    topic_names: list[str]


def item_tables(
    items: pd.DataFrame, item_embeddings: np.ndarray, train: pd.DataFrame, config: RankingConfig
) -> ItemTables:
    """Builds popularity, age and topic tables from the catalog and the training events.

    Age is measured at the last training timestamp; items without ``published_at`` get the
    median age. Topics are category one-hots, or soft k-means clusters of the item embeddings
    when ``config.topics == "clusters"`` (or when items carry no category).
    """
    counts = train["item_id"].astype(str).value_counts()
    popularity = np.log1p(counts.reindex(items["item_id"].astype(str)).fillna(0).to_numpy(float))
    age = np.zeros(len(items))
    if "published_at" in items and items["published_at"].notna().any():
        reference = train["timestamp"].max()
        years = (reference - items["published_at"]).dt.total_seconds().to_numpy() / (365.25 * 86400)
        age = np.where(np.isnan(years), np.nanmedian(years), np.clip(years, 0, None))
    categories = items["category"].astype(str) if "category" in items else pd.Series([""] * len(items))
    if config.topics == "category" and (categories != "").all():
        topics, names = category_one_hot(categories.tolist())
    else:
        centroids = fit_topic_centroids(item_embeddings, min(config.num_clusters, len(items)))
        topics = soft_topic_assignments(item_embeddings, centroids)
        names = [f"cluster {i}" for i in range(len(centroids))]
    return ItemTables(np.stack([popularity, age], axis=1).astype(np.float32), topics.astype(np.float32), names)
