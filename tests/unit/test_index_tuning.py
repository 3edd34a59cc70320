"""ScaNN auto-tuning: reaches the requested recall, respects explicit settings, rejects bad values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from tfrecs_llm.config import Config, IndexConfig
from tfrecs_llm.index import ScannIndex, build_index, scann_parameters, scann_settings
from tfrecs_llm.index.tuning import perturbed_item_queries

DIM = 32


def clustered_unit_vectors(num: int, seed: int, num_clusters: int = 200) -> np.ndarray:
    """``[num, DIM]`` unit vectors around ``num_clusters`` centres (cosine ~0.8 to their centre)."""
    centres = np.random.default_rng(1234).normal(size=(num_clusters, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, num_clusters, num)] + 0.75 / np.sqrt(DIM) * rng.normal(size=(num, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def catalog() -> tuple[np.ndarray, np.ndarray]:
    vectors = clustered_unit_vectors(20_000, seed=0)
    return np.array([f"item{i}" for i in range(len(vectors))]), vectors


def exact_recall(index, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    _, found = index(tf.constant(queries), k=k)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    found = found.numpy().astype(str)
    return float(np.mean([len(set(f) & set(ids[e])) / k for f, e in zip(found, exact)]))


def test_tuning_reaches_the_target_with_the_cheapest_setting_tried(catalog) -> None:
    ids, vectors = catalog
    index, choice = build_index(ids, vectors, IndexConfig(k=10, scann_target_recall=0.9))
    settings = choice.scann
    assert choice.kind == "scann" and settings.source == "autotuned" and settings.reached_target
    assert settings.recall >= 0.9 and settings.queries == "perturbed items"
    # Tuning must trade: cheaper than visiting every leaf with the largest reordering it tried.
    assert settings.num_leaves_to_search < settings.num_leaves
    chosen_cost = next(p.cost for p in settings.evaluated if (p.num_leaves_to_search, p.num_reordering_candidates)
                       == (settings.num_leaves_to_search, settings.num_reordering_candidates))
    assert all(p.recall < 0.9 for p in settings.evaluated if p.cost < chosen_cost)
    # The layer that ships is the searcher tuning measured: same recall on the tuning queries
    # (500 perturbed items, seeded) ...
    assert exact_recall(index, ids, vectors, perturbed_item_queries(vectors, 500), k=10) == pytest.approx(settings.recall)
    # ... and on fresh queries of the same kind, within the sampling error of 300 queries.
    assert exact_recall(index, ids, vectors, perturbed_item_queries(vectors, 300, seed=99), k=10) >= 0.88
    json.dumps(choice.scann.to_dict())


def test_tuning_on_given_queries_and_higher_targets_cost_more(catalog) -> None:
    _, vectors = catalog
    queries = clustered_unit_vectors(400, seed=5)
    low, _ = scann_settings(vectors, 10, IndexConfig(scann_target_recall=0.8), queries)
    high, _ = scann_settings(vectors, 10, IndexConfig(scann_target_recall=0.99), queries)
    assert low.queries == "query embeddings" and low.num_queries == 400
    assert low.recall >= 0.8 and high.recall >= 0.99
    cost = {s: next(p.cost for p in s.evaluated if p.num_leaves_to_search == s.num_leaves_to_search
                    and p.num_reordering_candidates == s.num_reordering_candidates) for s in (low, high)}
    assert cost[low] < cost[high]


def test_explicit_settings_bypass_tuning(catalog) -> None:
    _, vectors = catalog
    fixed = IndexConfig(scann_num_leaves=100, scann_num_leaves_to_search=7, scann_num_reordering_candidates=123)
    settings, searcher = scann_settings(vectors, 10, fixed)
    assert searcher is None and settings.source == "config" and settings.evaluated == ()
    assert settings.parameters == {"num_leaves": 100, "num_leaves_to_search": 7, "num_reordering_candidates": 123}
    off = IndexConfig(scann_autotune=False)
    settings, searcher = scann_settings(vectors, 10, off)
    assert searcher is None and settings.source == "heuristic"
    assert settings.parameters == scann_parameters(len(vectors), 10, off)


def test_a_fixed_setting_stays_fixed_while_the_other_is_tuned(catalog) -> None:
    ids, vectors = catalog
    settings, searcher = scann_settings(vectors, 10, IndexConfig(scann_num_reordering_candidates=40))
    assert settings.source == "autotuned" and settings.num_reordering_candidates == 40
    assert {p.num_reordering_candidates for p in settings.evaluated} == {40}
    # One trained searcher, two search settings: each layer applies its own on every call.
    queries = perturbed_item_queries(vectors, 200, seed=7)
    recalls = [
        exact_recall(ScannIndex(10, settings.num_leaves, leaves, 40).index_searcher(searcher, tf.constant(ids)),
                     ids, vectors, queries, k=10)
        for leaves in (1, settings.num_leaves)
    ]
    assert recalls[0] < recalls[1] - 0.1


def test_query_embeddings_of_the_wrong_width_are_rejected(catalog) -> None:
    _, vectors = catalog
    with pytest.raises(ValueError, match=r"query_embeddings must be \[num_queries, 32\]"):
        scann_settings(vectors, 10, IndexConfig(), np.zeros((50, 8), np.float32))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("index.scann_target_recall", 0, r"index.scann_target_recall must be in \(0, 1\]"),
        ("index.scann_target_recall", 1.2, r"index.scann_target_recall must be in \(0, 1\]"),
        ("index.scann_num_leaves", -1, "index.scann_num_leaves must be >= 0"),
        ("index.scann_num_leaves_to_search", -3, "index.scann_num_leaves_to_search must be >= 0"),
        ("index.scann_num_reordering_candidates", -5, "index.scann_num_reordering_candidates must be >= 0"),
        ("index.scann_tuning_queries", 3, "index.scann_tuning_queries must be >= 10"),
        ("index.scann_autotune", "yes", "index.scann_autotune must be true or false"),
    ],
)
def test_bad_index_values_are_named(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config().with_overrides({key: value})


def test_more_leaves_searched_than_exist_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"index.scann_num_leaves_to_search \(50\) must be <= index.scann_num_leaves \(20\)"):
        Config().with_overrides({"index.scann_num_leaves": 20, "index.scann_num_leaves_to_search": 50})


def test_tuning_knobs_round_trip_through_json() -> None:
    config = Config().with_overrides(
        {"index.scann_target_recall": 0.9, "index.scann_autotune": False, "index.scann_tuning_queries": 200}
    )
    assert Config.from_json(config.to_json()) == config


def test_sample_texts_is_a_seeded_sample_of_distinct_texts() -> None:
    from tfrecs_llm.index import sample_texts

    texts = [f"text {i % 300}" for i in range(900)]
    sample = sample_texts(texts, 50, seed=1)
    assert len(sample) == len(set(sample)) == 50 and set(sample) <= set(texts)
    assert sample == sample_texts(texts, 50, seed=1) != sample_texts(texts, 50, seed=2)
    assert sample_texts(["a", "b", "a"], 10) == ["a", "b"]
