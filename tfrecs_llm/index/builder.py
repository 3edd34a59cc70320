"""Building a top-k layer (ScaNN or TFRS BruteForce) over item embeddings.

ScaNN's tree partitioning and asymmetric hashing are trained on the catalog, so they need enough
items: below ``IndexConfig.min_items_for_scann`` (2000 by default) the ``auto`` kind uses exact
search, which at that size costs microseconds per query anyway, and logs why. ScaNN's search
settings are tuned to a target recall (``tfrecs_llm.index.tuning``) unless the config sets them,
and the searcher they were measured on is the one that ships (``ScannIndex``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrecs_llm.config import IndexConfig
from tfrecs_llm.index.scann_layer import ScannIndex
from tfrecs_llm.index.tuning import ScannSettings, scann_settings

logger = logging.getLogger(__name__)

SCANN_HARD_MINIMUM_ITEMS = 64
"""Fewer items than this cannot train ScaNN's asymmetric-hashing codebooks at all."""


@dataclass(frozen=True)
class IndexChoice:
    """Which index was built, and why; ``scann``: its parameters and measured recall (ScaNN only)."""

    kind: str
    reason: str
    scann: ScannSettings | None = None


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


def build_index(
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    config: IndexConfig,
    k: int | None = None,
    query_embeddings: np.ndarray | None = None,
) -> tuple[tfrs.layers.factorized_top_k.TopK, IndexChoice]:
    """Indexes ``item_embeddings: [num_items, dim]`` under ``item_ids: [num_items]`` (strings).

    The returned layer maps query embeddings ``[batch, dim]`` to ``(scores, ids)``, each
    ``[batch, k]``. ScaNN's search settings are tuned on ``query_embeddings: [num_queries, dim]``
    when given (a sample of real queries), else on perturbed items; see ``scann_settings``.
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
    if choice.kind == "brute_force":
        index = tfrs.layers.factorized_top_k.BruteForce(k=k)
        index.index(tf.constant(item_embeddings), identifiers)
        return index, choice
    settings, searcher = scann_settings(item_embeddings, k, config, query_embeddings)
    logger.info("ScaNN parameters: %s (%s)", settings.parameters, settings.source)
    index = ScannIndex(k=k, **settings.parameters)
    if searcher is None:
        index.index(tf.constant(item_embeddings), identifiers)
    else:
        index.index_searcher(searcher, identifiers)
    return index, dataclasses.replace(choice, scann=settings)
