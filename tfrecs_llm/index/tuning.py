"""ScaNN auto-tuning: the cheapest search settings whose recall@k against exact search reaches a target.

ScaNN's partitioning (``num_leaves`` k-means centres) and quantizer are trained once; how many
leaves a query visits and how many candidates are re-scored exactly are search-time settings.
So one searcher is trained, a grid of search settings is walked from cheap to expensive against
the exact top-k of a sample of queries, and that same searcher ships (``ScannIndex``) with the
cheapest setting that reaches ``IndexConfig.scann_target_recall``: the exported index is the
one whose recall was measured.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from scann.scann_ops.py import scann_ops

from tfrecs_llm.config import IndexConfig
from tfrecs_llm.index.scann_layer import train_searcher

logger = logging.getLogger(__name__)

LEAF_FRACTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
"""Share of ``num_leaves`` a query searches, the grid's first axis (cheap to expensive)."""

REORDER_MULTIPLES = (1, 2, 3, 5, 10, 20, 50)
"""Re-scored candidates as multiples of k, the grid's second axis."""

REORDER_COST_IN_POINTS = 130.0
"""Cost of re-scoring one candidate exactly, in quantized datapoints scored.

Fitted on a 2-core AVX2 CPU over 1M x 64 items (time per query = 4.7 ns per quantized point
+ 0.62 us per re-scored candidate): the grid is ranked by this model rather than by timings
so the same catalog always gets the same index, whatever else the machine is doing.
"""

QUERY_NOISE = 1.0
"""Default tuning queries: items plus Gaussian noise of this norm relative to the item's norm.

Noise as large as the item puts a query at cosine ~0.7 from its source item, between clusters
rather than on them: a harder query than most, so the tuned index errs on the side of recall.
"""

TUNING_SEED = 0


@dataclass(frozen=True)
class TuningPoint:
    """One evaluated search setting."""

    num_leaves_to_search: int
    num_reordering_candidates: int
    recall: float
    cost: float


@dataclass(frozen=True)
class ScannSettings:
    """The ScaNN parameters an index was built with, where they came from, and what they reach.

    source: ``autotuned`` (search settings chosen by ``tune_search``), ``config`` (every search
        setting set in ``IndexConfig``) or ``heuristic`` (``index.scann_autotune`` is false:
        sizes from the catalog size, see ``scann_parameters``).
    recall: recall@k of the index against exact search on the tuning queries (``None`` when
        not tuned). training_seconds: ScaNN training (the index's build); tuning_seconds: exact
        top-k of the sample plus the grid walk.
    """

    num_leaves: int
    num_leaves_to_search: int
    num_reordering_candidates: int
    source: str
    k: int
    target_recall: float | None = None
    recall: float | None = None
    reached_target: bool | None = None
    num_queries: int = 0
    queries: str = ""
    training_seconds: float = 0.0
    tuning_seconds: float = 0.0
    evaluated: tuple[TuningPoint, ...] = ()

    @property
    def parameters(self) -> dict[str, int]:
        """Keyword arguments of ``ScannIndex`` (and of ``tfrs.layers.factorized_top_k.ScaNN``)."""
        return {
            "num_leaves": self.num_leaves,
            "num_leaves_to_search": self.num_leaves_to_search,
            "num_reordering_candidates": self.num_reordering_candidates,
        }

    def to_dict(self) -> dict:
        """JSON-ready, for the model card."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RecallSample:
    """Queries and their exact top-k: the yardstick approximate results are measured against.

    queries: ``[num_queries, dim]``; neighbours: ``[num_queries, k]`` item positions.
    """

    queries: np.ndarray
    neighbours: np.ndarray
    source: str

    def recall(self, found: np.ndarray, item_ids: np.ndarray | None = None) -> float:
        """Mean recall@k of ``found: [num_queries, >= k]`` (positions, or ids if ``item_ids``)."""
        expected = self.neighbours if item_ids is None else np.asarray(item_ids)[self.neighbours]
        return recall_at_k(np.asarray(found)[:, : self.neighbours.shape[1]], expected)


def recall_at_k(found: np.ndarray, expected: np.ndarray) -> float:
    """Mean over queries of ``|found_i & expected_i| / k``; ``found, expected: [num_queries, k]``."""
    hits = (found[:, :, np.newaxis] == expected[:, np.newaxis, :]).any(axis=2).sum()
    return float(hits / expected.size)


def perturbed_item_queries(item_embeddings: np.ndarray, num_queries: int, seed: int = TUNING_SEED) -> np.ndarray:
    """``[num_queries, dim]`` queries: sampled items plus noise (see ``QUERY_NOISE``), seeded."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(item_embeddings), num_queries, replace=num_queries > len(item_embeddings))
    items = item_embeddings[rows]
    noise = rng.normal(size=items.shape).astype(np.float32)
    noise *= QUERY_NOISE * np.linalg.norm(items, axis=1, keepdims=True) / np.sqrt(items.shape[1])
    return items + noise


def sample_texts(texts: Sequence[str], max_count: int, seed: int = TUNING_SEED) -> list[str]:
    """Up to ``max_count`` distinct texts of ``texts``, a seeded sample in first-seen order:
    user texts whose query embeddings ScaNN is tuned on."""
    distinct = list(dict.fromkeys(str(t) for t in texts))
    if len(distinct) <= max_count:
        return distinct
    keep = np.sort(np.random.default_rng(seed).choice(len(distinct), max_count, replace=False))
    return [distinct[i] for i in keep]


def exact_top_k(queries: np.ndarray, item_embeddings: np.ndarray, k: int) -> np.ndarray:
    """Positions ``[num_queries, k]`` of each query's ``k`` highest dot products, best first."""
    items = tf.constant(item_embeddings)
    # Score blocks of ~64M floats (256 MB) at a time: a 1M-item catalog takes 64 queries a block.
    block = max(1, (1 << 26) // len(item_embeddings))
    positions = []
    for start in range(0, len(queries), block):
        scores = tf.matmul(tf.constant(queries[start : start + block]), items, transpose_b=True)
        positions.append(tf.math.top_k(scores, k=k).indices.numpy())
    return np.concatenate(positions)


def recall_sample(
    item_embeddings: np.ndarray,
    k: int,
    num_queries: int,
    query_embeddings: np.ndarray | None = None,
) -> RecallSample:
    """Up to ``num_queries`` queries (given ones first, else perturbed items) and their exact top-k."""
    if query_embeddings is not None:
        queries = np.asarray(query_embeddings, np.float32)
        if queries.ndim != 2 or queries.shape[1] != item_embeddings.shape[1]:
            raise ValueError(
                f"query_embeddings must be [num_queries, {item_embeddings.shape[1]}] like the items, "
                f"got shape {queries.shape}"
            )
        if len(queries) > num_queries:
            queries = queries[np.random.default_rng(TUNING_SEED).choice(len(queries), num_queries, replace=False)]
        source = "query embeddings"
    else:
        queries = perturbed_item_queries(item_embeddings, num_queries)
        source = "perturbed items"
    started = time.perf_counter()
    neighbours = exact_top_k(queries, item_embeddings, k)
    logger.info(
        "ScaNN tuning: exact top-%d of %d queries (%s) over %d items in %.1f s",
        k, len(queries), source, len(item_embeddings), time.perf_counter() - started,
    )
    return RecallSample(queries, neighbours, source)


def scann_parameters(num_items: int, k: int, config: IndexConfig) -> dict[str, int]:
    """ScaNN tree / reordering sizes from the catalog size, unless set in ``config`` (no tuning).

    ``num_leaves ~ sqrt(n)``, search 1/10 of the leaves (at least 8), re-score
    ``max(10 k, 100)`` candidates exactly.
    """
    num_leaves = config.scann_num_leaves or max(2, min(num_items // 2, round(math.sqrt(num_items))))
    to_search = config.scann_num_leaves_to_search or max(num_leaves // 10, min(num_leaves, 8))
    reorder = config.scann_num_reordering_candidates or max(10 * k, 100)
    return {
        "num_leaves": num_leaves,
        "num_leaves_to_search": min(to_search, num_leaves),
        "num_reordering_candidates": reorder,
    }


def search_grid(num_leaves: int, k: int, num_items: int, config: IndexConfig) -> tuple[list[int], list[int]]:
    """Ascending ``num_leaves_to_search`` and reordering sizes to try; fixed ones come from config."""
    leaves = config.scann_num_leaves_to_search
    reorder = config.scann_num_reordering_candidates
    leaves_grid = [min(leaves, num_leaves)] if leaves else sorted({max(1, round(num_leaves * f)) for f in LEAF_FRACTIONS})
    reorder_grid = [reorder] if reorder else sorted({min(num_items, k * m) for m in REORDER_MULTIPLES})
    return leaves_grid, reorder_grid


def estimated_cost(num_items: int, num_leaves: int, leaves_to_search: int, reordering: int) -> float:
    """Work per query in quantized datapoints scored (see ``REORDER_COST_IN_POINTS``)."""
    return num_items * leaves_to_search / num_leaves + REORDER_COST_IN_POINTS * reordering


def tune_search(
    searcher: scann_ops.ScannSearcher,
    num_items: int,
    num_leaves: int,
    k: int,
    config: IndexConfig,
    sample: RecallSample,
) -> ScannSettings:
    """Walks the search grid of a trained ``searcher``; returns the cheapest setting reaching the target.

    Settings fixed in ``config`` stay fixed. Recall grows with the reordering size at a fixed
    number of leaves, so each leaves value is first checked at the largest reordering size and
    then walked up from the smallest; a leaves value whose cheapest possible setting already
    costs more than the best found ends the walk. When nothing reaches the target, the most
    accurate setting wins and a warning says so.
    """
    leaves_grid, reorder_grid = search_grid(num_leaves, k, num_items, config)
    queries = tf.constant(sample.queries)
    evaluated: list[TuningPoint] = []

    def evaluate(leaves: int, reorder: int) -> TuningPoint:
        found = searcher.search_batched_parallel(
            queries, final_num_neighbors=k, pre_reorder_num_neighbors=reorder, leaves_to_search=leaves
        ).indices
        point = TuningPoint(
            leaves, reorder, sample.recall(found.numpy()), estimated_cost(num_items, num_leaves, leaves, reorder)
        )
        evaluated.append(point)
        logger.info(
            "ScaNN tuning %2d: leaves_to_search=%d reordering=%d recall@%d=%.4f",
            len(evaluated), leaves, reorder, k, point.recall,
        )
        return point

    target = config.scann_target_recall
    best: TuningPoint | None = None
    for leaves in leaves_grid:
        if best and estimated_cost(num_items, num_leaves, leaves, reorder_grid[0]) >= best.cost:
            break
        most_accurate = evaluate(leaves, reorder_grid[-1])
        if most_accurate.recall < target:
            continue
        for reorder in reorder_grid:
            if best and estimated_cost(num_items, num_leaves, leaves, reorder) >= best.cost:
                break
            point = most_accurate if reorder == reorder_grid[-1] else evaluate(leaves, reorder)
            if point.recall >= target:
                best = point
                break
    reached = best is not None
    if best is None:
        best = max(evaluated, key=lambda p: (p.recall, -p.cost))
        logger.warning(
            "ScaNN tuning: no setting reached recall@%d %.3f; using the most accurate one (%.4f). "
            "Set index.scann_num_reordering_candidates higher, or index.kind=brute_force for exact "
            "results.",
            k, target, best.recall,
        )
    return ScannSettings(
        num_leaves=num_leaves,
        num_leaves_to_search=best.num_leaves_to_search,
        num_reordering_candidates=best.num_reordering_candidates,
        source="autotuned",
        k=k,
        target_recall=target,
        recall=best.recall,
        reached_target=reached,
        num_queries=len(sample.queries),
        queries=sample.source,
        evaluated=tuple(evaluated),
    )


def tunes_search(config: IndexConfig) -> bool:
    """Whether ScaNN's search settings are tuned on sample queries (else config or heuristic)."""
    search_fixed = bool(config.scann_num_leaves_to_search and config.scann_num_reordering_candidates)
    return config.scann_autotune and not search_fixed


def scann_settings(
    item_embeddings: np.ndarray,
    k: int,
    config: IndexConfig,
    query_embeddings: np.ndarray | None = None,
) -> tuple[ScannSettings, scann_ops.ScannSearcher | None]:
    """The ScaNN parameters for ``item_embeddings: [num_items, dim]``, tuned unless config says not.

    ``num_leaves`` is ``index.scann_num_leaves`` or ~sqrt(num_items). The search settings
    (``num_leaves_to_search``, ``num_reordering_candidates``) set in config win; the others are
    tuned to ``index.scann_target_recall`` against exact search on ``query_embeddings:
    [num_queries, dim]`` (default: perturbed items), unless ``index.scann_autotune`` is false.
    Returns the settings and, when tuned, the trained searcher they were measured on (ship it
    with ``ScannIndex.index_searcher``); ``None`` otherwise.
    """
    num_items = len(item_embeddings)
    defaults = scann_parameters(num_items, k, config)
    if not tunes_search(config):
        search_fixed = bool(config.scann_num_leaves_to_search and config.scann_num_reordering_candidates)
        return ScannSettings(**defaults, source="config" if search_fixed else "heuristic", k=k), None
    k = min(k, num_items)
    started = time.perf_counter()
    sample = recall_sample(item_embeddings, k, config.scann_tuning_queries, query_embeddings)
    sampling_seconds = time.perf_counter() - started
    num_leaves = defaults["num_leaves"]
    _, reorder_grid = search_grid(num_leaves, k, num_items, config)
    logger.info(
        "ScaNN tuning: training %d leaves over %d items (target recall@%d %.3f)",
        num_leaves, num_items, k, config.scann_target_recall,
    )
    started = time.perf_counter()
    # Keeps exact vectors for the largest reordering size tried; a search may ask for fewer.
    searcher = train_searcher(tf.constant(item_embeddings), k, num_leaves, reorder_grid[-1])
    training_seconds = time.perf_counter() - started
    started = time.perf_counter()
    settings = tune_search(searcher, num_items, num_leaves, k, config, sample)
    settings = dataclasses.replace(
        settings,
        training_seconds=training_seconds,
        tuning_seconds=sampling_seconds + time.perf_counter() - started,
    )
    logger.info(
        "ScaNN tuning: chose leaves_to_search=%d/%d reordering=%d (recall@%d %.4f, %d settings; "
        "training %.1f s, tuning %.1f s)",
        settings.num_leaves_to_search, num_leaves, settings.num_reordering_candidates, k,
        settings.recall, len(settings.evaluated), training_seconds, settings.tuning_seconds,
    )
    return settings, searcher
