"""Relevance and entropy-diversity losses against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
import tensorflow as tf

from tfrecs_llm.losses import (
    category_one_hot,
    combined_loss,
    entropy_diversity_loss,
    fit_topic_centroids,
    relevance_loss,
    soft_topic_assignments,
)

LN2 = math.log(2.0)
A, B = [1.0, 0.0], [0.0, 1.0]  # one-hot topics


def test_entropy_diversity_loss_by_hand() -> None:
    # List 0: scores [0, 0, ln 2] -> exp [1, 1, 2] -> p = [1/4, 1/4, 1/2]; topics A, A, B
    #   -> m = [1/2, 1/2] -> L = 2 * (1/2) ln(1/2) = -ln 2 (the minimum for 2 topics).
    # List 1: scores [0, 0, 0] -> p = [1/3] * 3; topics A, A, B -> m = [2/3, 1/3]
    #   -> L = (2/3) ln(2/3) + (1/3) ln(1/3).
    # List 2: every item topic A -> m = [1, 0] -> L = 1 ln 1 + 0 ln 0 = 0.
    scores = tf.constant([[0.0, 0.0, LN2], [0.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    topics = tf.constant([[A, A, B], [A, A, B], [A, A, A]])
    expected = [-LN2, 2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3), 0.0]
    np.testing.assert_allclose(entropy_diversity_loss(scores, topics), expected, atol=1e-6)


def test_temperature_divides_the_scores() -> None:
    # tau = 2: scores [0, 0, 2 ln 2] / 2 = [0, 0, ln 2] -> same as list 0 above: -ln 2.
    loss = entropy_diversity_loss(tf.constant([[0.0, 0.0, 2 * LN2]]), tf.constant([[A, A, B]]), 2.0)
    np.testing.assert_allclose(loss, [-LN2], atol=1e-6)


def test_soft_topics() -> None:
    # scores [0, 0] -> p = [1/2, 1/2]; c = [[1/2, 1/2], [1, 0]] -> m = [3/4, 1/4]
    #   -> L = (3/4) ln(3/4) + (1/4) ln(1/4).
    loss = entropy_diversity_loss(tf.zeros([1, 2]), tf.constant([[[0.5, 0.5], A]]))
    np.testing.assert_allclose(loss, [0.75 * math.log(0.75) + 0.25 * math.log(0.25)], atol=1e-6)


def test_mask_excludes_padding() -> None:
    # List 0: the padded 4th entry (score 5, topic A) gets p = 0 -> p = [1/3] * 3 over A, A, B
    #   -> L = (2/3) ln(2/3) + (1/3) ln(1/3).
    # List 1: fully padded -> m = 0 -> L = 0, and no NaN in the gradient.
    scores = tf.Variable([[0.0, 0.0, 0.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    topics = tf.constant([[A, A, B, A], [A, B, A, B]])
    mask = tf.constant([[True, True, True, False], [False] * 4])
    with tf.GradientTape() as tape:
        loss = entropy_diversity_loss(scores, topics, mask=mask)
    expected = [2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3), 0.0]
    np.testing.assert_allclose(loss, expected, atol=1e-6)
    gradient = tape.gradient(loss, scores).numpy()
    assert np.isfinite(gradient).all()
    np.testing.assert_array_equal(gradient[:, 3], 0.0)
    np.testing.assert_array_equal(gradient[1], 0.0)


def test_gradient_pushes_mass_to_the_under_represented_topic() -> None:
    # p = [1/3] * 3 on topics A, A, B, m = [2/3, 1/3]. dL/dm_t = ln m_t + 1, so the score of
    # item i gets g_i = ln m_topic(i) + 1 and dL/ds_i = p_i (g_i - sum_j p_j g_j):
    #   item 2 (B): (1/3) * (2/3) (ln(1/3) - ln(2/3)) = -(2/9) ln 2
    #   items 0, 1 (A): (1/3) * (1/3) (ln(2/3) - ln(1/3)) = +(1/9) ln 2
    # Gradient descent raises the B item's score and lowers the A items'.
    scores = tf.Variable([[0.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = entropy_diversity_loss(scores, tf.constant([[A, A, B]]))
    gradient = tape.gradient(loss, scores)
    np.testing.assert_allclose(gradient, [[LN2 / 9, LN2 / 9, -2 * LN2 / 9]], atol=1e-6)


def test_entropy_diversity_loss_validation() -> None:
    with pytest.raises(ValueError, match="tau"):
        entropy_diversity_loss(tf.zeros([1, 2]), tf.zeros([1, 2, 2]), tau=0.0)
    with pytest.raises(ValueError, match="does not match"):
        entropy_diversity_loss(tf.zeros([1, 2]), tf.zeros([1, 3, 2]))


def test_category_one_hot() -> None:
    one_hot, names = category_one_hot(["jazz", "books", "jazz"])
    assert names == ["books", "jazz"]
    np.testing.assert_array_equal(one_hot, [[0, 1], [1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        category_one_hot(["jazz", ""])


def test_soft_topic_assignments_by_hand() -> None:
    # cos([1, 0], centroids) = [1, 0]; cos([0, 2], centroids) = [0, 1]. temperature 0.5 doubles
    # them: softmax([2, 0]) = [e^2, 1] / (e^2 + 1).
    e2 = math.exp(2.0)
    assignments = soft_topic_assignments(
        np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), temperature=0.5
    )
    expected = np.array([[e2, 1.0], [1.0, e2]]) / (e2 + 1.0)
    np.testing.assert_allclose(assignments, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        soft_topic_assignments(np.eye(2), np.eye(2), temperature=0.0)


def test_fit_topic_centroids_by_hand() -> None:
    # Unit items [1, 0], [.8, .6] | [0, -1], [-.6, -.8]: cosine .8 within a cluster, <= 0
    # across, so whichever item seeds the first centroid, the second is from the other cluster.
    # Cluster sums [1.8, .6] and [-.6, -1.8], of norm sqrt(3.6)
    #   -> centroids [3, 1] / sqrt(10) and [-1, -3] / sqrt(10).
    items = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, -1.0], [-0.6, -0.8]])
    for seed in range(4):
        centroids = fit_topic_centroids(items, k=2, seed=seed)
        ordered = centroids[np.argsort(-centroids[:, 0])]
        expected = np.array([[3, 1], [-1, -3]]) / math.sqrt(10)
        np.testing.assert_allclose(ordered, expected, atol=1e-6)
    np.testing.assert_array_equal(fit_topic_centroids(items, 2), fit_topic_centroids(items, 2))
    with pytest.raises(ValueError, match="k must be"):
        fit_topic_centroids(items, k=5)


def test_duplicate_items_still_give_k_centroids() -> None:
    # Three identical items and k = 2: farthest-first picks two of the copies; both centroids
    # are [1, 0] and none is left NaN.
    centroids = fit_topic_centroids(np.array([[2.0, 0.0]] * 3), k=2)
    np.testing.assert_allclose(centroids, [[1.0, 0.0], [1.0, 0.0]])


def test_listwise_softmax_by_hand() -> None:
    # List 0: scores [ln 2, 0, 0] -> softmax [1/2, 1/4, 1/4]; labels [1, 0, 0] -> -ln(1/2) = ln 2.
    # List 1: labels [2, 2, 0] normalise to [1/2, 1/2, 0]
    #   -> -(1/2) ln(1/2) - (1/2) ln(1/4) = (1/2) ln 2 + ln 2 = 1.5 ln 2.
    # Mean over the two lists: 1.25 ln 2.
    loss = relevance_loss("listwise_softmax")
    labels = tf.constant([[1.0, 0.0, 0.0], [2.0, 2.0, 0.0]])
    scores = tf.constant([[LN2, 0.0, 0.0], [LN2, 0.0, 0.0]])
    assert float(loss(labels, scores)) == pytest.approx(1.25 * LN2, rel=1e-6)
    # A list with no relevant item contributes 0.
    assert float(loss(tf.zeros([1, 3]), scores[:1])) == pytest.approx(0.0)


def test_pairwise_logistic_by_hand() -> None:
    # List 0: labels [1, 0, 0], scores [1, 0, 2]: pairs (0, 1) margin 1 and (0, 2) margin -1
    #   -> (ln(1 + e^-1) + ln(1 + e^1)) / 2.
    # List 1: labels [2, 1, 0], scores all 0: three pairs of margin 0, each ln 2 -> ln 2.
    loss = relevance_loss("pairwise_logistic")
    labels = tf.constant([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    scores = tf.constant([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    list_0 = (math.log(1 + math.exp(-1)) + math.log(1 + math.e)) / 2
    assert float(loss(labels, scores)) == pytest.approx((list_0 + LN2) / 2, rel=1e-6)
    # All labels equal: no ordered pair, loss 0.
    assert float(loss(tf.ones([1, 3]), scores[:1])) == pytest.approx(0.0)


def test_pointwise_losses_by_hand() -> None:
    # BCE with logits 0 -> sigmoid 1/2 -> -ln(1/2) = ln 2 for either label.
    bce = relevance_loss("pointwise_bce")
    assert float(bce(tf.constant([[1.0, 0.0]]), tf.zeros([1, 2]))) == pytest.approx(LN2, rel=1e-6)
    # MSE: errors [1, 2] -> (1 + 4) / 2 = 2.5.
    mse = relevance_loss("pointwise_mse")
    assert float(mse(tf.constant([[1.0, 3.0]]), tf.constant([[0.0, 1.0]]))) == pytest.approx(2.5)


def test_unknown_relevance_loss_lists_choices() -> None:
    with pytest.raises(ValueError, match="listwise_softmax, pairwise_logistic"):
        relevance_loss("hinge")


def test_combined_loss() -> None:
    # 0.5 + 0.2 * (-ln 2)
    combined = combined_loss(tf.constant(0.5), tf.constant(-LN2), lambda_div=0.2)
    assert float(combined) == pytest.approx(0.5 - 0.2 * LN2, rel=1e-6)
    with pytest.raises(ValueError, match="lambda_div"):
        combined_loss(tf.constant(0.5), tf.constant(-LN2), lambda_div=-0.1)
