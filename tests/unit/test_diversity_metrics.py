"""Diversity metrics (NumPy) and streaming list-wise Keras metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrecs_llm.losses import relevance_loss
from tfrecs_llm.metrics import ranking_metrics, target_ranks
from tfrecs_llm.metrics.diversity import (
    catalog_coverage,
    category_coverage_at_k,
    category_entropy_at_k,
    intra_list_diversity,
    novelty,
)
from tfrecs_llm.metrics.keras_metrics import MRR, CategoryEntropyAtK, NDCGAtK, RecallAtK

# Six items: embeddings, categories and interaction counts.
EMBEDDINGS = np.array([[1, 0], [0, 1], [1, 1], [-1, 0], [2, 0], [0, 3]], dtype=float)
CATEGORIES = np.array(["a", "b", "a", "c", "a", "b"])
POPULARITY = np.array([5, 3, 1, 0, 0, 1])
RECS = np.array([[0, 1, 2], [0, 1, 3]])
H_2_1 = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))  # entropy of shares (2/3, 1/3)


def test_intra_list_diversity_by_hand() -> None:
    # List 0 (items 0, 1, 2): cos = 0, 1/sqrt2, 1/sqrt2 -> distances 1, 1 - 1/sqrt2 (twice)
    #   -> mean (3 - sqrt2) / 3.
    # List 1 (items 0, 1, 3): cos = 0, -1, 0 -> distances 1, 2, 1 -> mean 4/3.
    # Mean over lists: (7 - sqrt2) / 6.
    assert intra_list_diversity(RECS, EMBEDDINGS) == pytest.approx((7 - math.sqrt(2)) / 6)


def test_category_metrics_by_hand() -> None:
    # List 0: categories a, b, a -> shares (2/3, 1/3); list 1: a, b, c -> ln 3.
    assert category_entropy_at_k(RECS, CATEGORIES) == pytest.approx((H_2_1 + math.log(3)) / 2)
    # Catalog has 3 categories: list 0 covers {a, b} -> 2/3, list 1 all -> 1; mean 5/6.
    assert category_coverage_at_k(RECS, CATEGORIES) == pytest.approx(5 / 6)


def test_catalog_coverage_and_novelty_by_hand() -> None:
    # Distinct items {0, 1, 2, 3} of 6.
    assert catalog_coverage(RECS, num_items=6) == pytest.approx(4 / 6)
    # Counts [5, 3, 1, 0, 0, 1] sum 10; p = (n + 1) / (10 + 6) = [6, 4, 2, 1, 1, 2] / 16.
    # -log2 p: item 0 log2(8/3), item 1 2, item 2 3, item 3 4. Recommended: 0, 1, 2, 0, 1, 3
    #   -> (2 log2(8/3) + 2 * 2 + 3 + 4) / 6.
    expected = (2 * math.log2(8 / 3) + 11) / 6
    assert novelty(RECS, POPULARITY) == pytest.approx(expected)


def test_numpy_metric_validation() -> None:
    with pytest.raises(ValueError, match=r"recs\[1, 2\] = 6"):
        catalog_coverage(np.array([[0, 1, 2], [0, 1, 6]]), num_items=6)
    with pytest.raises(ValueError, match="k >= 2"):
        intra_list_diversity(RECS[:, :1], EMBEDDINGS)
    with pytest.raises(ValueError, match="integer"):
        novelty(RECS.astype(float), POPULARITY)


def _stream(metric: tf.keras.metrics.Metric, *batches) -> float:
    """Feeds each batch through a graph-mode ``update_state``; returns ``result()``."""

    @tf.function
    def update(*tensors: tf.Tensor) -> None:
        metric.update_state(*tensors)

    for batch in batches:
        update(*batch)
    return float(metric.result())


def test_ranking_metrics_match_numpy_for_one_relevant_item() -> None:
    # Targets 2, 1, 3. Ranks: 0.9 >= 0.7 -> 1; ties count against -> 3; 0.9 on top -> 0.
    # The 4th list has no relevant item and is left out of the means.
    scores = np.array(
        [[0.9, 0.5, 0.7, 0.1], [0.3] * 4, [0.2, 0.8, 0.1, 0.9], [0.1, 0.2, 0.3, 0.4]],
        dtype=np.float32,
    )
    labels = np.zeros_like(scores)
    labels[[0, 1, 2], [2, 1, 3]] = 1.0
    reference = ranking_metrics(target_ranks(scores[:3], np.array([2, 1, 3])), ks=(2,))
    # Split into two batches to exercise accumulation.
    batches = [(labels[:2], scores[:2]), (labels[2:], scores[2:])]
    ndcg = _stream(NDCGAtK(2), *batches)
    recall = _stream(RecallAtK(2), *batches)
    mrr = _stream(MRR(), *batches)
    assert ndcg == pytest.approx((1 / math.log2(3) + 0 + 1) / 3, rel=1e-6)
    assert recall == pytest.approx(2 / 3, rel=1e-6)
    assert mrr == pytest.approx((1 / 2 + 1 / 4 + 1) / 3, rel=1e-6)
    assert [ndcg, recall, mrr] == pytest.approx(
        [reference["ndcg@2"], reference["recall@2"], reference["mrr"]], rel=1e-6
    )


def test_ranking_metrics_with_graded_labels_by_hand() -> None:
    # Labels [2, 0, 1], scores [0.1, 0.3, 0.2] -> ranks [2, 0, 1]; gains 2^y - 1 = [3, 0, 1].
    # NDCG@3: DCG = 3 / log2(4) + 1 / log2(3); ideal = 3 / log2(2) + 1 / log2(3).
    # NDCG@2: only item 2 (rank 1) is in the top 2: DCG = 1 / log2(3); same ideal.
    # Recall@2: relevant items 0 and 2, item 2 in top 2 -> 1/2. MRR: best relevant rank 1 -> 1/2.
    batch = (tf.constant([[2.0, 0.0, 1.0]]), tf.constant([[0.1, 0.3, 0.2]]))
    ideal = 3 + 1 / math.log2(3)
    assert _stream(NDCGAtK(3), batch) == pytest.approx((1.5 + 1 / math.log2(3)) / ideal, rel=1e-6)
    assert _stream(NDCGAtK(2), batch) == pytest.approx((1 / math.log2(3)) / ideal, rel=1e-6)
    assert _stream(RecallAtK(2), batch) == pytest.approx(0.5)
    assert _stream(MRR(), batch) == pytest.approx(0.5)


def test_sample_weight_reset_and_config() -> None:
    # List 0: target on top -> MRR 1; list 1: target last of 2 -> 1/2. Weights [3, 1]:
    # (3 * 1 + 1 * 1/2) / 4 = 7/8.
    metric = MRR()
    labels, scores = tf.constant([[1.0, 0.0], [1.0, 0.0]]), tf.constant([[2.0, 1.0], [1.0, 2.0]])
    metric.update_state(labels, scores, sample_weight=tf.constant([3.0, 1.0]))
    assert float(metric.result()) == pytest.approx(7 / 8)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert NDCGAtK.from_config(NDCGAtK(5).get_config()).k == 5
    with pytest.raises(ValueError, match="k must be >= 1"):
        RecallAtK(0)


def test_ranking_metrics_plug_into_tfrs_ranking_task() -> None:
    # Same list as the graded case: listwise softmax loss plus NDCG@3 through tfrs.tasks.Ranking.
    task = tfrs.tasks.Ranking(loss=relevance_loss("listwise_softmax"), metrics=[NDCGAtK(3)])
    task(labels=tf.constant([[2.0, 0.0, 1.0]]), predictions=tf.constant([[0.1, 0.3, 0.2]]))
    ideal = 3 + 1 / math.log2(3)
    expected = (1.5 + 1 / math.log2(3)) / ideal
    assert float(task.metrics[0].result()) == pytest.approx(expected, rel=1e-6)


def test_category_entropy_metric_matches_numpy() -> None:
    # List 0 scores [.9, .1, .5, .7], topics [0, 0, 1, 2]; list 1 [.2, .4, .6, .8], [1, 1, 0, 0].
    # k=2: list 0 top (0, 3) -> topics 0, 2 -> ln 2; list 1 top (3, 2) -> 0, 0 -> 0. Mean ln2 / 2.
    # k=3: list 0 adds item 2 (topic 1) -> ln 3; list 1 adds item 1 (topic 1) -> H(2/3, 1/3).
    scores = np.array([[0.9, 0.1, 0.5, 0.7], [0.2, 0.4, 0.6, 0.8]], dtype=np.float32)
    topic_ids = np.array([[0, 0, 1, 2], [1, 1, 0, 0]])
    one_hot = np.eye(3, dtype=np.float32)[topic_ids]
    for k, expected in [(2, math.log(2) / 2), (3, (math.log(3) + H_2_1) / 2)]:
        streamed = _stream(CategoryEntropyAtK(k), (scores, one_hot))
        assert streamed == pytest.approx(expected, rel=1e-6)
        # The NumPy metric over the same top k, lists flattened into one catalog of 8 items.
        recs = np.argsort(-scores, axis=1, kind="stable")[:, :k] + np.array([[0], [4]])
        assert category_entropy_at_k(recs, topic_ids.reshape(-1)) == pytest.approx(expected)
