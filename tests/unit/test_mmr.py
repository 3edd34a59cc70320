"""MMR re-ranking against top-k, hand-worked selections and graph-mode use."""

from __future__ import annotations

import numpy as np
import pytest

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
import tensorflow as tf

from tfrecs_llm.ranking import mmr_rerank

NEG_INF = float("-inf")

# Four unit vectors in 2-d. Pairwise dot products:
#   e0.e1 = 0.8   e0.e2 = 0.0   e0.e3 = 0.6
#   e1.e2 = 0.6   e1.e3 = 0.0   e2.e3 = -0.8
EMBEDDINGS = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, -0.8]], dtype=np.float32)
RELEVANCE = np.array([0.9, 0.8, 0.5, 0.7], dtype=np.float32)


def rerank(relevance, embeddings, k, diversity):
    indices, scores = mmr_rerank(tf.constant([relevance]), tf.constant([embeddings]), k, diversity)
    return indices.numpy()[0].tolist(), scores.numpy()[0]


def test_zero_diversity_equals_top_k_including_ties_and_excluded() -> None:
    rng = np.random.default_rng(0)
    relevance = rng.normal(size=(5, 12)).astype(np.float32)
    relevance[:, 3] = relevance[:, 7]  # ties go to the lower index, as in top_k
    relevance[1, [0, 5, 9]] = NEG_INF
    embeddings = rng.normal(size=(5, 12, 4)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=-1, keepdims=True)

    indices, scores = mmr_rerank(relevance, embeddings, k=12, diversity=0.0)
    expected = tf.math.top_k(relevance, k=12)
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
    np.testing.assert_array_equal(scores.numpy(), expected.values.numpy())
    assert indices.dtype == tf.int32


def test_hand_worked_example_with_half_diversity() -> None:
    # d = 0.5: objective_i = 0.5 * rel_i - 0.5 * max_{j chosen} e_i.e_j
    # Step 1 (nothing chosen, penalty 0): 0.5 * [0.9, 0.8, 0.5, 0.7] -> item 0.
    # Step 2 (chosen {0}): item 1: 0.40 - 0.5 * 0.8 =  0.00
    #                      item 2: 0.25 - 0.5 * 0.0 =  0.25  <- item 2
    #                      item 3: 0.35 - 0.5 * 0.6 =  0.05
    # Step 3 (chosen {0, 2}): item 1: 0.40 - 0.5 * max(0.8, 0.6)  = 0.00
    #                         item 3: 0.35 - 0.5 * max(0.6, -0.8) = 0.05  <- item 3
    # Step 4: item 1 is all that is left.
    indices, scores = rerank(RELEVANCE, EMBEDDINGS, k=4, diversity=0.5)
    assert indices == [0, 2, 3, 1]
    np.testing.assert_array_equal(scores, RELEVANCE[[0, 2, 3, 1]])
    assert rerank(RELEVANCE, EMBEDDINGS, k=4, diversity=0.0)[0] == [0, 1, 3, 2]
    assert rerank(RELEVANCE, EMBEDDINGS, k=2, diversity=0.5)[0] == [0, 2]


def test_full_diversity_picks_most_relevant_then_most_dissimilar() -> None:
    # e3 = -e0 is the least relevant item but the most dissimilar to item 0.
    embeddings = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]], dtype=np.float32)
    relevance = np.array([0.9, 0.8, 0.7, 0.1], dtype=np.float32)
    # Step 1: the objective is 0 everywhere; the tie goes to the most relevant item 0.
    # Step 2: -max sim = [-0.8, -0.6, +1.0] for items 1, 2, 3 -> item 3.
    # Step 3: item 1: -max(0.8, -0.8) = -0.8; item 2: -max(0.6, -0.6) = -0.6 -> item 2.
    assert rerank(relevance, embeddings, k=4, diversity=1.0)[0] == [0, 3, 2, 1]


def test_excluded_entries_come_only_after_all_others() -> None:
    relevance = np.array([NEG_INF, 0.2, NEG_INF, 0.1], dtype=np.float32)
    for diversity in (0.0, 0.5, 1.0):
        assert rerank(relevance, EMBEDDINGS, k=2, diversity=diversity)[0] in ([1, 3], [3, 1])
        indices, scores = rerank(relevance, EMBEDDINGS, k=4, diversity=diversity)
        assert indices[2:] == [0, 2]
        assert np.all(np.isneginf(scores[2:]))


def test_runs_in_tf_function_with_per_row_diversity() -> None:
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, None, None], tf.float32),
            tf.TensorSpec([None], tf.float32),
        ]
    )
    def serve(relevance, embeddings, diversity):
        return mmr_rerank(relevance, embeddings, k=3, diversity=diversity)

    indices, scores = serve(
        tf.constant([RELEVANCE, RELEVANCE]),
        tf.constant([EMBEDDINGS, EMBEDDINGS]),
        tf.constant([0.0, 0.5]),
    )
    np.testing.assert_array_equal(indices.numpy(), [[0, 1, 3], [0, 2, 3]])
    np.testing.assert_array_equal(scores.numpy(), [RELEVANCE[[0, 1, 3]], RELEVANCE[[0, 2, 3]]])


def test_diversity_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="diversity"):
        mmr_rerank(RELEVANCE[None], EMBEDDINGS[None], k=2, diversity=1.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="diversity"):
        mmr_rerank(RELEVANCE[None], EMBEDDINGS[None], k=2, diversity=tf.constant(-0.1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="scalar or \\[batch\\]"):
        mmr_rerank(RELEVANCE[None], EMBEDDINGS[None], k=2, diversity=tf.constant([0.1, 0.2]))


def test_k_larger_than_list_raises() -> None:
    with pytest.raises(ValueError, match="k must be <= list_size"):
        mmr_rerank(RELEVANCE[None], EMBEDDINGS[None], k=5, diversity=0.5)
