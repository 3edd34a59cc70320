"""Grounded explanations on a hand-made catalog: graph version, NumPy reference, SavedModel."""

from __future__ import annotations

import numpy as np
import pytest

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
import tensorflow as tf

from tfrecs_llm.ranking import STOPWORDS, explain, explain_py

TITLES = ["Rockets and Planets", "Pasta Every Day", "Jazz Nights", "The Red Planet", "Café Olé"]
TEXTS = [
    "Rockets and Planets. How rockets reach other planets, on TV.",
    "Pasta Every Day. Quick pasta recipes with tomato sauce.",
    "Jazz Nights. A history of jazz clubs and the night music.",
    "The Red Planet. Rockets, rovers and the planets' story: Mars for explorers.",
    "Café Olé. Coffee and pasta recipes from a small café.",
]
# Unit vectors; the dot products used below:
#   e3.e0 = 0.8   e3.e2 = 0.6   e4.e1 = 0.6   e4.e2 = 0.8   e1.e0 = e1.e2 = 0   e2.e0 = 0
EMBEDDINGS = np.array(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.8, 0.0, 0.6], [0.0, 0.6, 0.8]],
    dtype=np.float32,
)
SPACE_FAN = "I love the planets of the solar system, and rockets on TV. Rockets!"


def run(recs, history, user_text, stopwords=STOPWORDS) -> list[list[str]]:
    graph = explain(
        tf.constant(recs, tf.int32),
        tf.constant(history, tf.int32),
        EMBEDDINGS,
        TITLES,
        TEXTS,
        tf.constant(user_text),
        tf.constant(stopwords),
    )
    graph = [[reason.decode() for reason in row] for row in graph.numpy()]
    reference = explain_py(recs, np.array(history), EMBEDDINGS, TITLES, TEXTS, user_text, stopwords)
    assert graph == reference
    return graph


def test_most_similar_history_item_is_chosen() -> None:
    # History [0, 2]: rec 3 -> cos 0.8 (item 0) vs 0.6 (item 2); rec 4 -> 0.0 vs 0.8;
    # rec 1 -> 0.0 vs 0.0, a tie that goes to the earlier history entry.
    reasons = run([[3, 4, 1]], [[0, 2]], ["nothing in common"])
    assert reasons == [
        ["Because you liked Rockets and Planets", "Because you liked Jazz Nights",
         "Because you liked Rockets and Planets"],
    ]  # fmt: skip


def test_padding_and_the_item_itself_are_ignored() -> None:
    # Padding -1 must not act as item 0 (cos(e0, e0) = 1); rec 3 in its own history is skipped,
    # leaving item 2 (cos 0.6). Without any usable history, no reason is left at all.
    reasons = run([[0], [3], [1]], [[-1, 2, -1], [3, 2, -1], [-1, -1, -1]], ["", "", ""])
    assert reasons == [["Because you liked Jazz Nights"], ["Because you liked Jazz Nights"], [""]]


def test_empty_history_columns() -> None:
    reasons = run([[0, 2]], np.zeros((1, 0), np.int32), [SPACE_FAN])
    assert reasons == [["mentions rockets, planets", ""]]


def test_shared_words_in_item_order_deduplicated_without_stopwords() -> None:
    # User words after filtering: planets, solar, system, rockets ("love", "the", "and" are
    # stopwords; "of", "tv" are too short). Item 0's text says "rockets" twice, then "planets".
    # Item 3: rockets, planets ("planet" in its title is another word).
    reasons = run([[0, 3, 1]], [[-1]], [SPACE_FAN])
    assert reasons == [["mentions rockets, planets", "mentions rockets, planets", ""]]


def test_at_most_three_shared_words_and_both_parts_joined() -> None:
    # Item 2's words in order: jazz nights history jazz clubs night music -> first 3 shared.
    reasons = run([[2]], [[4]], ["music, night clubs, history and jazz"])
    assert reasons == [["Because you liked Café Olé; mentions jazz, history, clubs"]]


def test_custom_stopwords_and_accented_words() -> None:
    reasons = run([[4]], [[-1]], ["CAFÉ recipes with pasta"], stopwords=["PASTA"])
    assert reasons == [["mentions café, recipes"]]


def test_graph_equals_reference_on_random_cases() -> None:
    rng = np.random.default_rng(0)
    vocabulary = ["rockets", "planets", "the", "jazz", "pasta", "tv", "Café", "über", "and", "x"]
    for _ in range(5):
        batch, k, h = rng.integers(1, 4), rng.integers(1, 5), rng.integers(0, 4)
        recs = rng.integers(0, len(TITLES), size=(batch, k))
        history = rng.integers(-1, len(TITLES), size=(batch, h))
        users = [" ".join(rng.choice(vocabulary, size=rng.integers(0, 8))) for _ in range(batch)]
        run(recs, history, users)


class Explainer(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = tf.Variable(EMBEDDINGS)
        self.titles = tf.Variable(TITLES)
        self.texts = tf.Variable(TEXTS)
        self.stopwords = tf.Variable(STOPWORDS)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None], tf.string),
        ]
    )
    def __call__(self, recs, history, user_text):
        return explain(
            recs, history, self.embeddings, self.titles, self.texts, user_text, self.stopwords
        )


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("explainer"))
    tf.saved_model.save(Explainer(), path)
    return tf.saved_model.load(path)


@pytest.mark.parametrize("batch", [0, 1, 2])
def test_saved_model_matches_reference(reloaded, batch: int) -> None:
    recs = np.array([[3, 4, 1], [0, 2, 4]], np.int32)[:batch]
    history = np.array([[0, 2, -1], [-1, -1, -1]], np.int32)[:batch]
    users = [SPACE_FAN, "jazz and coffee"][:batch]
    reasons = reloaded(recs, history, tf.constant(users, tf.string)).numpy()
    assert reasons.shape == (batch, 3)
    expected = explain_py(recs, history, EMBEDDINGS, TITLES, TEXTS, users)
    assert [[r.decode() for r in row] for row in reasons] == expected
    if batch:
        assert expected[0][0] == "Because you liked Rockets and Planets; mentions rockets, planets"


def test_batch_mismatch_raises() -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_text"):
        explain([[0]], [[1]], EMBEDDINGS, TITLES, TEXTS, ["a", "b"])
