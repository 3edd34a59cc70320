"""The ranking head's parts: candidate lists, the lambda_div = 0 equivalence, config errors.

The lambda_div trade-off itself is measured on the bundled sample with the real checkpoint
(tests/integration/test_sample_end_to_end.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs_llm.config import RankingConfig
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.losses import category_one_hot, relevance_loss
from tfrecs_llm.evaluation.ranking import list_metrics, score_lists
from tfrecs_llm.ranking.lists import keep_lists_with_positives, retrieve_candidates
from tfrecs_llm.ranking.scorer import CandidateScorer
from tfrecs_llm.ranking.topics import ItemTables
from tfrecs_llm.training.ranker import build_ranker


def test_candidates_are_retrieval_top_k_minus_exclusions() -> None:
    # Query [1, 0] against items at angles: scores = [1.0, 0.8, 0.6, -1.0, 0.9].
    items = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [-1, 0], [0.9, 0.436]], np.float32)
    lists = retrieve_candidates(
        np.array([[1, 0], [1, 0]], np.float32), items, [np.array([0]), np.array([], int)], 3,
        positive_rows=np.array([2, 3]),
    )
    # Query 0 excludes item 0: top-3 of [_, 0.8, 0.6, -1, 0.9] = items 4, 1, 2; positive 2 is third.
    np.testing.assert_array_equal(lists["candidate_rows"], [[4, 1, 2], [0, 4, 1]])
    np.testing.assert_allclose(lists["retrieval_score"][0], [0.9, 0.8, 0.6], atol=1e-3)
    np.testing.assert_array_equal(lists["labels"], [[0, 0, 1], [0, 0, 0]])
    # Query 1's positive (item 3) was not retrieved: the list is dropped, never patched.
    kept = keep_lists_with_positives(lists)
    np.testing.assert_array_equal(kept["candidate_rows"], [[4, 1, 2]])


def test_list_metrics_by_hand() -> None:
    # One list [7, 8, 9] with scores [0.1, 0.9, 0.5] -> order 8, 9, 7; target 7 at rank 2.
    items = np.eye(10, dtype=np.float32)
    categories = np.array(["a"] * 8 + ["b", "b"])
    metrics = list_metrics(np.array([[7, 8, 9]]), np.array([[0.1, 0.9, 0.5]]), np.array([7]), categories, items, k=3)
    assert metrics["recall@3"] == 1.0
    assert metrics["ndcg@3"] == pytest.approx(1 / np.log2(4))
    # Top 3 holds categories a, b, b: entropy = -(1/3 ln 1/3 + 2/3 ln 2/3) = 0.6365.
    assert metrics["category_entropy@3"] == pytest.approx(0.6365, abs=1e-4)


def _small_world(seed: int = 0):
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(60, 8)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    queries = items[rng.integers(0, 60, 300)] + 0.3 * rng.normal(size=(300, 8)).astype(np.float32)
    positives = np.argsort(-(queries @ items.T), axis=1)[:, rng.integers(0, 5)]
    lists = retrieve_candidates(queries, items, [np.zeros(0, int)] * 300, 10, positive_rows=positives)
    lists["query_embedding"] = queries
    one_hot, names = category_one_hot([f"c{i % 4}" for i in range(60)])
    tables = ItemTables(rng.normal(size=(60, 2)).astype(np.float32), one_hot, names)
    return items, tables, keep_lists_with_positives(lists)


def _fit(model: tf_keras.Model, lists: dict[str, np.ndarray]) -> np.ndarray:
    model.scorer.normalize.adapt(model.scorer.scalar_features({k: tf.constant(v) for k, v in lists.items()}))
    model.fit(make_dataset(lists, 32, seed=3), epochs=4, verbose=0)
    return score_lists(model, lists)


def _train(lambda_div: float, world) -> np.ndarray:
    items, tables, lists = world
    tf.keras.utils.set_random_seed(3)
    return _fit(build_ranker(items, tables, RankingConfig(lambda_div=lambda_div, num_candidates=10), 0.05), lists)


class _RelevanceOnlyRanker(tfrs.Model):
    """A TFRS ranking model with no diversity term at all: the scorer and a Ranking task."""

    def __init__(self, scorer: CandidateScorer, config: RankingConfig) -> None:
        super().__init__()
        self.scorer = scorer
        self.task = tfrs.tasks.Ranking(loss=relevance_loss(config.relevance_loss))

    def call(self, features):
        return self.scorer(features)

    def compute_loss(self, features, training=False):
        return self.task(labels=features["labels"], predictions=self.scorer(features))


def test_lambda_zero_is_the_relevance_only_ranker() -> None:
    items, tables, lists = _small_world()
    config = RankingConfig(lambda_div=0.0, num_candidates=10)
    ours = build_ranker(items, tables, config, 0.05)
    scorer = CandidateScorer(items, tables.scalars, tables.topics, config.hidden_units, 0.05)
    plain = _RelevanceOnlyRanker(scorer, config)
    plain.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate))
    first = {k: tf.constant(v[:2]) for k, v in lists.items()}
    ours.scorer(first), plain.scorer(first)
    plain.scorer.set_weights(ours.scorer.get_weights())  # the same starting point
    np.testing.assert_allclose(_fit(ours, lists), _fit(plain, lists), atol=1e-4)


def test_the_diversity_term_spreads_the_top_of_the_lists_over_more_categories() -> None:
    items, tables, lists = world = _small_world()
    categories = np.array([f"c{i % 4}" for i in range(60)])
    positives = lists["candidate_rows"][lists["labels"].astype(bool)]

    def entropy(scores: np.ndarray) -> float:
        metrics = list_metrics(lists["candidate_rows"], scores, positives, categories, items, k=5)
        return metrics["category_entropy@5"]

    relevance_only, diverse = entropy(_train(0.0, world)), entropy(_train(5.0, world))
    assert diverse > relevance_only + 0.05, (relevance_only, diverse)


def test_untrained_ranker_keeps_retrieval_order() -> None:
    items, tables, lists = _small_world()
    model = build_ranker(items, tables, RankingConfig(num_candidates=10), retrieval_temperature=0.05)
    model.scorer.normalize.adapt(model.scorer.scalar_features({k: tf.constant(v) for k, v in lists.items()}))
    np.testing.assert_allclose(score_lists(model, lists), lists["retrieval_score"] / 0.05, rtol=1e-5)


@pytest.mark.parametrize(
    "field, value, message",
    [("lambda_div", -0.1, "lambda_div must be >= 0"), ("tau", 0.0, "tau must be > 0"),
     ("relevance_loss", "hinge", "relevance_loss must be one of")],
)
def test_bad_ranking_config(field, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        RankingConfig(**{field: value}).validate()


def test_k_larger_than_the_list_is_rejected() -> None:
    from tfrecs_llm.evaluation.ranking import evaluate_ranking

    with pytest.raises(ValueError, match="k=60 is larger than the candidate list \\(50\\)"):
        evaluate_ranking(None, None, None, None, num_candidates=50, k=60)
