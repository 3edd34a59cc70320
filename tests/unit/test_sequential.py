"""The sequential query tower (``model.query_history="sequence"``) and the SASRec baseline, on a
catalog whose users walk through it in order: after item k of a topic comes item k + 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder
from tfrecs_llm.config import Config
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.sequences import padded_rows, training_windows
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.evaluation.baselines.sasrec import SasRecConfig, sasrec_scorer
from tfrecs_llm.export.predict import predict_saved_model
from tfrecs_llm.export.signatures import right_aligned_rows
from tfrecs_llm.recommender import Recommender

TOPICS = ("space", "cooking", "music")
PER_TOPIC = 10


def walk_items() -> pd.DataFrame:
    return validate_items(pd.DataFrame([
        {"item_id": f"{t}-{i}", "title": f"{t} story {i}", "description": f"a {t} story", "category": t}
        for t in TOPICS for i in range(PER_TOPIC)
    ]))


def walk_events(num_users: int = 120, length: int = 8) -> pd.DataFrame:
    """User u walks its topic from a random start: item k, then k + 1, ... (mod 10)."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(num_users):
        topic, start = TOPICS[u % 3], int(rng.integers(PER_TOPIC))
        for step in range(length):
            rows.append({"user_id": f"u{u}", "item_id": f"{topic}-{(start + step) % PER_TOPIC}",
                         "timestamp": 1_700_000_000 + 60 * step})
    return validate_interactions(pd.DataFrame(rows), walk_items())


def _config(**overrides) -> Config:
    base = {"model.query_history": "sequence", "model.history_length": 6, "model.embedding_dim": 16,
            "model.history_dropout": 0.0, "train.epochs": 30, "train.batch_size": 32, "train.learning_rate": 5e-3,
            "encoder.sequence_length": 16, "ranking.enabled": False}
    return Config().with_overrides({**base, **overrides})


@pytest.fixture(scope="module")
def trained() -> Recommender:
    return Recommender.train(walk_items(), walk_events(), _config(), encoder=make_tiny_encoder(16), verbose=False)


def test_windows_predict_each_next_item_and_keep_the_last_item_rightmost() -> None:
    events = validate_interactions(pd.DataFrame({
        "user_id": ["a"] * 4, "item_id": ["space-0", "space-1", "space-2", "space-3"],
        "timestamp": [1, 2, 3, 4], "user_text": ["", "", "rockets!", ""],
    }), walk_items())
    row_of = pd.Series(np.arange(30), index=walk_items()["item_id"])
    windows = training_windows(events, row_of, length=5)
    # Inputs: items 0, 1, 2 (rows + 1), right-aligned; targets: 1, 2, 3.
    np.testing.assert_array_equal(windows.inputs, [[0, 0, 1, 2, 3]])
    np.testing.assert_array_equal(windows.targets, [[0, 0, 2, 3, 4]])
    assert [windows.texts[i] for i in windows.text_index[0][2:]] == ["", "rockets!", ""]
    only_last = training_windows(events, row_of, length=5, trained=np.array([False, False, False, True]))
    np.testing.assert_array_equal(only_last.weights, [[0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(padded_rows([["space-2", "nope", "space-3"]], row_of, 3), [[0, 3, 4]])
    np.testing.assert_array_equal(right_aligned_rows(tf.constant([[2, -1, 3]]), 3).numpy(), [[0, 3, 4]])


def test_the_sequential_tower_learns_what_comes_next(trained) -> None:
    histories = [[f"{t}-{k}", f"{t}-{k + 1}", f"{t}-{k + 2}"] for t in TOPICS for k in (0, 4)]
    recommendations = trained.recommend([""] * len(histories), k=3, history_item_ids=histories)
    hits = [f"{h[0].split('-')[0]}-{int(h[-1].split('-')[1]) + 1}" in [i for i, _ in recs]
            for h, recs in zip(histories, recommendations)]
    assert np.mean(hits) >= 0.8, (hits, recommendations)
    # Without a history the text alone decides: one list for every empty text.
    assert len({tuple(r) for r in trained.recommend([""] * 3, k=3)}) == 1


def _same(got, want) -> None:
    assert [[i for i, _ in r] for r in got] == [[i for i, _ in r] for r in want]
    np.testing.assert_allclose([[s for _, s in r] for r in got], [[s for _, s in r] for r in want], atol=1e-5)


def test_save_load_and_the_export_answer_like_in_process(trained, tmp_path) -> None:
    histories = [["space-1", "space-2"], ["music-5", "music-6", "music-7"], []]
    texts = ["", "", ""]
    expected = trained.recommend(texts, k=5, history_item_ids=histories)
    loaded = Recommender.load(trained.save(tmp_path / "model"), encoder=make_tiny_encoder(16))
    _same(loaded.recommend(texts, k=5, history_item_ids=histories), expected)
    assert loaded.history_sample == trained.history_sample != []
    path = trained.export(tmp_path / "exports", "walk", index_kind="brute_force", k=5)
    served = tf.saved_model.load(str(path)).signatures["recommend"](
        user_text=tf.constant(texts),
        exclude_item_ids=tf.constant([[""]] * 3),
        history_item_ids=tf.constant([h + [""] * (3 - len(h)) for h in histories]),
        diversity=tf.zeros([3]),
    )
    assert [[i.decode() for i in row] for row in served["item_ids"].numpy()] == [[i for i, _ in r] for r in expected]
    np.testing.assert_allclose(served["scores"].numpy(), [[s for _, s in r] for r in expected], atol=1e-4)
    # serving_default reads no history: it answers like the text-only in-process query.
    _same(predict_saved_model(path, texts), trained.recommend(texts, k=5))


def test_update_trains_on_the_new_events_only(trained, tmp_path) -> None:
    copy = Recommender.load(trained.save(tmp_path / "model"), encoder=make_tiny_encoder(16))
    before = copy.item_embeddings().copy()
    new = validate_interactions(pd.DataFrame({
        "user_id": ["u0", "u0"], "item_id": ["cooking-1", "cooking-2"], "timestamp": [1_800_000_000, 1_800_000_060],
    }), walk_items())
    history = pd.concat([walk_events(), new], ignore_index=True)
    assert copy.update(new, history, epochs=1) == 2
    assert not np.allclose(copy.item_embeddings(), before)  # the stage will be rebuilt from these


def test_sequence_needs_a_frozen_encoder() -> None:
    with pytest.raises(ValueError, match="needs encoder.trainable='frozen'"):
        _config(**{"encoder.trainable": "full"})


def test_sasrec_learns_the_next_item_pattern() -> None:
    events = walk_events()
    train, test = leave_last_out(events)
    ids = walk_items()["item_id"].to_numpy(str)
    config = SasRecConfig(hidden_dim=16, max_length=6, max_epochs=40, eval_every=10, patience=2, dropout=0.0,
                          learning_rate=5e-3, batch_size=32)
    score, chosen = sasrec_scorer(train, ids, config)
    queries = pd.DataFrame({"user_id": test["user_id"].astype(str).to_numpy()})
    top = np.argsort(-score(queries), axis=1)[:, :3]
    targets = pd.Series(np.arange(len(ids)), index=ids)[test["item_id"].astype(str)].to_numpy()
    assert np.mean([t in row for t, row in zip(targets, top)]) >= 0.8
    assert chosen["epochs"] in chosen["validation_ndcg@10"]
