"""What an exported ranking stage stores: the item table, ids and titles once each, and nothing
per item in saved_model.pb; reasons stay the same when titles are cut from the item texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
import tensorflow as tf

from tfrecs_llm.config import IndexConfig
from tfrecs_llm.export.tf_serving import SAVE_OPTIONS
from tfrecs_llm.index import build_index
from tfrecs_llm.ranking import explain, explain_py
from tfrecs_llm.ranking.stage import RankingStage

DIM = 8
K = 5
WORDS = ["rocket", "planet", "pasta", "sauce", "jazz", "music", "garden", "mystery"]
USER_TEXTS = ["rocket planet stories", "jazz music and pasta"]
HISTORY = [["item-3", "item-7", ""], ["item-1", "unknown-id", "item-2"]]


def catalog(num_items: int, titles: list[str] | None = None) -> dict:
    """Clustered unit embeddings ``[num_items, DIM]`` and ``title. description`` texts."""
    rng = np.random.default_rng(num_items)
    centres = rng.normal(size=(8, DIM))
    embeddings = centres[np.arange(num_items) % 8] + 0.3 * rng.normal(size=(num_items, DIM))
    embeddings = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)
    titles = titles or [f"{WORDS[i % 8]} tale {i}" for i in range(num_items)]
    texts = [f"{title}. A story about {WORDS[(i + 3) % 8]} and {WORDS[(i + 5) % 8]}." for i, title in enumerate(titles)]
    ids = np.array([f"item-{i}" for i in range(num_items)])
    return {"ids": ids, "embeddings": embeddings, "titles": titles, "texts": texts}


def stage_over(data: dict, kind: str) -> RankingStage:
    config = IndexConfig(kind=kind, scann_autotune=False)
    index, _ = build_index(data["ids"], data["embeddings"], config, k=20)
    return RankingStage(index, None, data["ids"], data["embeddings"], data["titles"], data["texts"], 20)


class StageModule(tf.Module):
    """The stage as ``RecommendModule`` serves it, from a query embedding."""

    def __init__(self, stage: RankingStage) -> None:
        super().__init__()
        self.stage = stage

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, DIM], tf.float32),
            tf.TensorSpec([None, None], tf.string),
            tf.TensorSpec([None, None], tf.string),
            tf.TensorSpec([None], tf.string),
        ]
    )
    def serve(self, query, exclude, history, user_text) -> dict[str, tf.Tensor]:
        outputs = self.stage.recommend(query, exclude, K)
        return {**outputs, "reasons": self.stage.reasons(outputs["rows"], history, user_text)}


def queries(data: dict) -> tuple[tf.Tensor, ...]:
    query = tf.constant(data["embeddings"][[3, 12]] + 0.05)
    return query, tf.constant([["item-3"], [""]]), tf.constant(HISTORY), tf.constant(USER_TEXTS)


def expected_reasons(data: dict, rows: np.ndarray) -> list[list[str]]:
    row_of = {item: row for row, item in enumerate(data["ids"])}
    history = np.array([[row_of.get(i, -1) for i in h] for h in HISTORY])
    return explain_py(rows, history, data["embeddings"], data["titles"], data["texts"], USER_TEXTS)


def decoded(reasons: tf.Tensor) -> list[list[str]]:
    return [[r.decode("utf-8") for r in row] for row in reasons.numpy()]


def save(module: StageModule, path: Path) -> Path:
    tf.saved_model.save(module, str(path), options=SAVE_OPTIONS)
    return path


def stored(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the export's checkpoint but the object graph, by key."""
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in key}


@pytest.mark.parametrize("kind", ["brute_force", "scann"])
def test_export_stores_one_item_table_and_no_per_item_constants(kind: str, tmp_path: Path) -> None:
    pb_sizes = {}
    for num_items in (500, 5000):
        data = catalog(num_items)
        module = StageModule(stage_over(data, kind))
        eager = module.serve(*queries(data))
        path = save(module, tmp_path / str(num_items))
        pb_sizes[num_items] = (path / "saved_model.pb").stat().st_size
        tensors = stored(path)

        tables = [v for v in tensors.values() if v.dtype == np.float32 and v.size == num_items * DIM]
        assert len(tables) == 1
        np.testing.assert_array_equal(tables[0].reshape(num_items, DIM), data["embeddings"])
        columns = [v.astype(str).tolist() for v in tensors.values() if v.dtype == object and v.shape == (num_items,)]
        assert sorted(columns) == sorted([data["ids"].tolist(), data["texts"]])  # titles are not stored
        title_bytes = [len(t.encode("utf-8")) for t in data["titles"]]
        assert any(v.dtype == np.int32 and v.tolist() == title_bytes for v in tensors.values())

    # The id -> row table is filled from the ids in the checkpoint when loaded, not from constants.
    assert abs(pb_sizes[5000] - pb_sizes[500]) < 20_000, pb_sizes
    loaded = tf.saved_model.load(str(path))
    served = loaded.serve(*queries(data))
    assert served["item_ids"].numpy().tolist() == eager["item_ids"].numpy().tolist()
    assert b"item-3" not in served["item_ids"].numpy()[0]
    assert decoded(served["reasons"]) == decoded(eager["reasons"]) == expected_reasons(data, served["rows"].numpy())
    assert decoded(served["reasons"])[0][0].startswith("Because you liked ")


def test_titles_that_do_not_start_their_texts_are_stored(tmp_path: Path) -> None:
    data = catalog(300)
    data["texts"][7] = "A different opening. " + data["texts"][7]
    stage = stage_over(data, "brute_force")
    assert stage.item_title_lengths is None
    tensors = stored(save(StageModule(stage), tmp_path))
    assert data["titles"] in [v.astype(str).tolist() for v in tensors.values() if v.dtype == object]
    rows = np.array([[0, 5, 7]], np.int32)
    reasons = decoded(stage.reasons(tf.constant(rows), tf.constant([["item-7"]]), tf.constant(USER_TEXTS[:1])))
    history_rows = np.array([[7]])
    assert reasons == explain_py(rows, history_rows, data["embeddings"], data["titles"], data["texts"], USER_TEXTS[:1])
    assert reasons[0][0].startswith("Because you liked mystery tale 7")  # its title, not its text's opening


def test_non_ascii_titles_are_cut_at_utf8_byte_lengths(tmp_path: Path) -> None:
    titles = ["Café Olé", "東京物語", "Ünïcödé 🚀 rocket", "naïve jazz"] * 25
    data = catalog(100, titles)
    stage = stage_over(data, "brute_force")
    assert stage.item_title_lengths is not None and stage.item_titles is None
    loaded = tf.saved_model.load(str(save(StageModule(stage), tmp_path)))
    served = loaded.serve(*queries(data))
    rows = np.array([[1, 2, 3, 0], [0, 5, 6, 7]], np.int32)
    history = tf.constant([["item-1", "item-2", "item-3"], ["item-1", "item-2", "item-3"]])
    reasons = decoded(stage.reasons(tf.constant(rows), history, tf.constant(USER_TEXTS)))
    liked = {r.split("; ")[0] for row in reasons for r in row}
    assert {"Because you liked 東京物語", "Because you liked Ünïcödé 🚀 rocket", "Because you liked naïve jazz"} & liked
    row_of = {item: row for row, item in enumerate(data["ids"])}
    history_rows = np.array([[row_of[i] for i in h] for h in history.numpy().astype(str)])
    assert reasons == explain_py(rows, history_rows, data["embeddings"], titles, data["texts"], USER_TEXTS)
    assert decoded(served["reasons"]) == expected_reasons(data, served["rows"].numpy())


def test_explain_needs_titles_or_their_lengths() -> None:
    data = catalog(4)
    lengths = [len(t.encode("utf-8")) for t in data["titles"]]
    for titles, title_lengths in ((None, None), (data["titles"], lengths)):
        with pytest.raises(ValueError, match="exactly one of item_titles and item_title_lengths"):
            explain([[0]], [[1]], data["embeddings"], titles, data["texts"], ["x"], item_title_lengths=title_lengths)
    cut = explain([[0]], [[1]], data["embeddings"], None, data["texts"], ["x"], item_title_lengths=lengths)
    assert cut.numpy()[0][0].decode() == f"Because you liked {data['titles'][1]}"


@pytest.mark.parametrize("kind", ["brute_force", "scann"])
def test_a_ranker_reads_the_index_table_and_scores_as_before(kind: str, tmp_path: Path) -> None:
    from tfrecs_llm.ranking.scorer import CandidateScorer

    data = catalog(400)
    rng = np.random.default_rng(1)
    scorer = CandidateScorer(
        data["embeddings"], rng.normal(size=(400, 2)).astype(np.float32),
        rng.random(size=(400, 3)).astype(np.float32), hidden_units=8,
    )
    scorer.normalize.adapt(rng.normal(size=(64, 4)).astype(np.float32))
    features = {
        "query_embedding": tf.constant(data["embeddings"][[3, 12]] + 0.05),
        "candidate_rows": tf.constant([[0, 5, 9], [1, 2, 399]]),
        "retrieval_score": tf.constant([[0.9, 0.5, 0.1], [0.3, 0.2, 0.1]]),
    }
    scorer(features)
    scorer.output_layer.kernel.assign(rng.normal(size=(8, 1)))  # a correction that changes the order
    config = IndexConfig(kind=kind, scann_autotune=False)
    index, _ = build_index(data["ids"], data["embeddings"], config, k=20)
    stage = RankingStage(index, scorer, data["ids"], data["embeddings"], data["titles"], data["texts"], 20)
    np.testing.assert_allclose(stage.scorer(features).numpy(), scorer(features).numpy(), rtol=1e-6)

    module = StageModule(stage)
    eager = module.serve(*queries(data))
    tensors = stored(save(module, tmp_path))
    assert len([v for v in tensors.values() if v.dtype == np.float32 and v.size == 400 * DIM]) == 1
    loaded = tf.saved_model.load(str(tmp_path))
    served = loaded.serve(*queries(data))
    assert served["item_ids"].numpy().tolist() == eager["item_ids"].numpy().tolist()
    np.testing.assert_allclose(served["scores"].numpy(), eager["scores"].numpy(), rtol=1e-5)
    # The trained scorer keeps its own table (training and the Python API read it).
    assert scorer.item_embeddings.shape == (400, DIM)
