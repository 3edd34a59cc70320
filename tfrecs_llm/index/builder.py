"""Building a TFRS top-k layer (ScaNN or BruteForce) over item embeddings.

ScaNN's tree partitioning and asymmetric hashing are trained on the catalog, so they need enough
items: below ``IndexConfig.min_items_for_scann`` (2000 by default) the ``auto`` kind uses exact
search, which at that size costs microseconds per query anyway, and logs why.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrecs_llm.config import IndexConfig

logger = logging.getLogger(__name__)

SCANN_HARD_MINIMUM_ITEMS = 64
"""Fewer items than this cannot train ScaNN's asymmetric-hashing codebooks at all."""


@dataclass(frozen=True)
class IndexChoice:
    """Which index was built, and why."""

    kind: str
    reason: str


def choose_index(num_items: int, config: IndexConfig) -> IndexChoice:
    """Picks ``scann`` or ``brute_force`` for a catalog of ``num_items``."""
    if config.kind == "brute_force":
        return IndexChoice("brute_force", "index.kind is 'brute_force'")
    if config.kind == "scann":
        if num_items < SCANN_HARD_MINIMUM_ITEMS:
            raise ValueError(
                f"index.kind='scann' needs at least {SCANN_HARD_MINIMUM_ITEMS} items to train its "
                f"codebooks; the catalog has {num_items}. Use index.kind='brute_force' or 'auto'."
            )
        return IndexChoice("scann", "index.kind is 'scann'")
    if num_items < config.min_items_for_scann:
        return IndexChoice(
            "brute_force",
            f"catalog has {num_items} items, below index.min_items_for_scann="
            f"{config.min_items_for_scann}: exact search is as fast and ScaNN's quantizer would "
            "have too few items to train on",
        )
    return IndexChoice("scann", f"catalog has {num_items} items (>= {config.min_items_for_scann})")


def scann_parameters(num_items: int, k: int, config: IndexConfig) -> dict[str, int]:
    """ScaNN tree / reordering sizes from the catalog size, unless set in ``config``.

    Defaults: ``num_leaves ~ sqrt(n)``, search 1/10 of the leaves (at least 8), re-score
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


def build_index(
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    config: IndexConfig,
    k: int | None = None,
) -> tuple[tfrs.layers.factorized_top_k.TopK, IndexChoice]:
    """Indexes ``item_embeddings: [num_items, dim]`` under ``item_ids: [num_items]`` (strings).

    The returned layer maps query embeddings ``[batch, dim]`` to ``(scores, ids)``, each
    ``[batch, k]``.
    """
    k = k or config.k
    item_embeddings = np.asarray(item_embeddings, np.float32)
    if item_embeddings.ndim != 2 or len(item_embeddings) != len(item_ids):
        raise ValueError(
            f"item_embeddings must be [num_items, dim] with num_items == len(item_ids) "
            f"({len(item_ids)}), got shape {item_embeddings.shape}"
        )
    choice = choose_index(len(item_ids), config)
    logger.info("index: %s (%s)", choice.kind, choice.reason)
    identifiers = tf.constant(np.asarray(item_ids).astype(str))
    if choice.kind == "scann":
        params = scann_parameters(len(item_ids), k, config)
        logger.info("ScaNN parameters: %s", params)
        index = tfrs.layers.factorized_top_k.ScaNN(k=k, **params)
    else:
        index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(tf.constant(item_embeddings), identifiers)
    return index, choice
