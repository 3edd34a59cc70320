"""Offline evaluation protocol: held-out events ranked against the full catalog, history excluded.

Every model and baseline is a :data:`ScoreFn`; the protocol builds the held-out queries, scores
them in memory-bounded batches, ranks each held-out item among all catalog items (the user's
train items excluded) and keeps per-query values, so that intervals and slices (cold-start
items) come from the same ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import tf_keras

from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.metrics import exclude_items, ranking_metrics, target_ranks
from tfrecs_llm.metrics.diversity import catalog_coverage, category_entropy_at_k, intra_list_diversity

__all__ = [
    "QUERY_COLUMNS",
    "HeldOutSet",
    "ScoreFn",
    "beyond_accuracy",
    "evaluate_scores",
    "held_out_queries",
    "per_query_metrics",
    "rank_held_out",
]

QUERY_COLUMNS = ("user_id", "user_text", "free_text", "timestamp", "history_item_ids")
"""What a scorer sees of a held-out event (never its item): ``user_text`` as the builder makes
it, ``free_text`` the event's own, and ``history_item_ids`` the user's train items in sequence
order (time, then row order), oldest first."""

ScoreFn = Callable[[pd.DataFrame], np.ndarray]
"""Maps a batch of queries (a DataFrame with the :data:`QUERY_COLUMNS`, ``[num_queries]`` rows)
to scores over the catalog ``[num_queries, num_items]``, catalog rows in catalog order."""

# Score cells per batch: bounds memory on large catalogs (~32 MB of float64).
_MAX_SCORE_CELLS = 1 << 22


def held_out_queries(
    builder: UserTextBuilder, row_of: pd.Series, train: pd.DataFrame, test: pd.DataFrame
) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """What each test event is evaluated with: its user text as of just before it, the catalog
    rows of the user's train items (to exclude) and the target row.

    Returns ``(texts [n], excluded_rows [n] arrays, target_rows [n])``; ``row_of`` maps item id
    to catalog row.
    """
    # Positional, not by index: train and test read from separate files share index labels.
    combined = pd.concat([train, test], ignore_index=True)
    texts = builder.for_events(combined).iloc[len(train) :].tolist()
    targets = row_of.reindex(test["item_id"].astype(str)).to_numpy()
    if np.isnan(targets.astype(float)).any():
        raise ValueError("test events reference items missing from the catalog")
    seen = train.groupby("user_id")["item_id"].agg(list)
    excluded = [row_of.reindex(seen.get(user, [])).dropna().to_numpy(dtype=int) for user in test["user_id"]]
    return texts, excluded, targets.astype(int)


def train_histories(train: pd.DataFrame, user_ids: pd.Series) -> list[list[str]]:
    """Each user's train item ids in sequence order (time, then row order), oldest first."""
    position = np.arange(len(train))
    order = np.lexsort((position, train["timestamp"].to_numpy(dtype="datetime64[ns]")))
    ordered = train.iloc[order]
    lists = ordered.groupby("user_id", sort=False)["item_id"].agg(lambda ids: list(map(str, ids)))
    return [lists.get(str(user), []) for user in user_ids]


@dataclass
class HeldOutSet:
    """The held-out events of one split, ready to be scored.

    ``queries``: one row per test event, ``user_id, user_text, timestamp`` (what scorers see)
    plus ``item_id`` and ``cold_start`` (the item has no train event); ``excluded_rows``:
    ``[num_queries]`` arrays of the user's train items' catalog rows; ``target_rows:
    [num_queries]``.
    """

    queries: pd.DataFrame
    excluded_rows: list[np.ndarray]
    target_rows: np.ndarray
    num_items: int

    @classmethod
    def build(
        cls,
        builder: UserTextBuilder,
        catalog_ids: Sequence[str] | np.ndarray,
        train: pd.DataFrame,
        test: pd.DataFrame,
    ) -> "HeldOutSet":
        """User texts are built from the train events strictly before each test event (plus the
        event's own free text), exactly as at serving time."""
        catalog_ids = np.asarray(catalog_ids, dtype=str)
        row_of = pd.Series(np.arange(len(catalog_ids)), index=catalog_ids)
        texts, excluded, targets = held_out_queries(builder, row_of, train, test)
        queries = pd.DataFrame(
            {
                "user_id": test["user_id"].astype(str).to_numpy(),
                "user_text": texts,
                "timestamp": test["timestamp"].to_numpy(),
                "item_id": test["item_id"].astype(str).to_numpy(),
            }
        )
        queries["cold_start"] = ~queries["item_id"].isin(set(train["item_id"].astype(str)))
        queries["history_item_ids"] = train_histories(train, queries["user_id"])
        free = test["user_text"].fillna("").astype(str).to_numpy() if "user_text" in test else [""] * len(test)
        queries.insert(2, "free_text", free)
        return cls(queries, excluded, targets, len(catalog_ids))

    @property
    def cold_start(self) -> np.ndarray:
        """``[num_queries]`` bool: the held-out item never appears in the train events."""
        return self.queries["cold_start"].to_numpy(dtype=bool)

    def __len__(self) -> int:
        return len(self.queries)


def rank_held_out(
    score_fn: ScoreFn, held_out: HeldOutSet, top_k: int = 10, verbose: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Scores every query, excludes its train items and ranks its target among the rest.

    Returns ``(ranks [num_queries]`` 0-based, ties counted against the target, ``top_rows
    [num_queries, top_k]`` the best ``top_k`` catalog rows, best first).
    """
    num_items = held_out.num_items
    if not 1 <= top_k <= num_items:
        raise ValueError(f"top_k must be between 1 and the catalog size {num_items}, got {top_k}")
    batch_size = max(1, min(1024, _MAX_SCORE_CELLS // num_items))
    scored = held_out.queries[list(QUERY_COLUMNS)]
    ranks, tops = [], []
    progress = tf_keras.utils.Progbar(len(held_out), unit_name="query", verbose=1 if verbose else 0)
    for start in range(0, len(held_out), batch_size):
        stop = start + batch_size
        scores = np.asarray(score_fn(scored.iloc[start:stop]))
        if scores.shape != (min(stop, len(held_out)) - start, num_items):
            raise ValueError(
                f"score function returned shape {scores.shape}, expected "
                f"[{min(stop, len(held_out)) - start} queries, {num_items} catalog items]"
            )
        scores = exclude_items(scores, held_out.excluded_rows[start:stop])
        ranks.append(target_ranks(scores, held_out.target_rows[start:stop]))
        tops.append(_top_rows(scores, top_k))
        progress.add(len(scores))
    return np.concatenate(ranks), np.concatenate(tops)


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """``[num_queries, k]`` rows of the k highest scores, best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def per_query_metrics(ranks: np.ndarray, ks: Sequence[int] = (10, 100)) -> dict[str, np.ndarray]:
    """Per-query ``recall@k`` (hit), ``ndcg@k`` and ``mrr`` from 0-based target ranks.

    ``ranks: [num_queries]``; each value is ``[num_queries]``, and its mean is what
    :func:`tfrecs_llm.metrics.ranking_metrics` reports.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    values = {f"recall@{k}": (ranks < k).astype(np.float64) for k in ks}
    values.update({f"ndcg@{k}": np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0) for k in ks})
    values["mrr"] = 1.0 / (ranks + 1.0)
    return values


def beyond_accuracy(
    top_rows: np.ndarray,
    num_items: int,
    item_embeddings: np.ndarray | None = None,
    item_categories: Sequence[str] | None = None,
) -> dict[str, float]:
    """Coverage, diversity and category entropy of the top-k lists ``top_rows: [num_queries, k]``.

    ``catalog_coverage@k`` always; ``ild@k`` with ``item_embeddings: [num_items, dim]`` (and
    k >= 2); ``category_entropy@k`` with ``item_categories: [num_items]`` labels, unless every
    label is empty (the catalog has no categories).
    """
    k = top_rows.shape[1]
    result = {f"catalog_coverage@{k}": catalog_coverage(top_rows, num_items)}
    if item_embeddings is not None and k >= 2:
        result[f"ild@{k}"] = intra_list_diversity(top_rows, item_embeddings)
    if item_categories is not None and any(str(c) for c in item_categories):
        result[f"category_entropy@{k}"] = category_entropy_at_k(top_rows, item_categories)
    return result


def evaluate_scores(
    score_fn: ScoreFn,
    catalog_ids: np.ndarray,
    train: pd.DataFrame,
    test: pd.DataFrame,
    builder: UserTextBuilder,
    ks: Sequence[int] = (10, 100),
) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and MRR of ``score_fn`` on the ``test`` events (see
    :class:`HeldOutSet`), and ``num_queries``."""
    held_out = HeldOutSet.build(builder, catalog_ids, train, test)
    ranks, _ = rank_held_out(score_fn, held_out, top_k=1)
    metrics = ranking_metrics(ranks, ks)
    metrics["num_queries"] = float(len(held_out))
    return metrics
