"""Baselines: popularity, the TFRS id-only tutorial model, TF-IDF and zero-shot encoder scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_split
from tfrecs_llm.evaluation.baselines.id_only import id_only_scorer
from tfrecs_llm.evaluation.baselines.popularity import popularity_scorer
from tfrecs_llm.evaluation.baselines.tfidf import TfIdfScorer
from tfrecs_llm.evaluation.baselines.zero_shot import ZeroShotScorer
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.evaluation.protocol import HeldOutSet, per_query_metrics, rank_held_out


def _queries(*texts: str, users: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users or [f"u{i}" for i in range(len(texts))], "user_text": list(texts)})


def test_popularity_orders_by_train_events_and_breaks_ties_by_catalog_order() -> None:
    train = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u1"], "item_id": ["b", "b", "c", "a"]})
    scores = popularity_scorer(train, np.array(["a", "b", "c", "d"]))(_queries("x", "y"))
    assert scores.shape == (2, 4)
    assert np.argsort(-scores[0]).tolist() == [1, 0, 2, 3]  # b: 2 events; a, c: 1 (a first); d: 0


CATALOG = ["Space rocket launch. a story", "Jazz music night. a story", "Pasta sauce recipe. a story"]


def test_tfidf_ranks_an_exact_word_match_first() -> None:
    scorer = TfIdfScorer(CATALOG)
    scores = scorer(_queries("I want pasta tonight", "a story about JAZZ!", CATALOG[0], "zzz unknown words"))
    assert scores.shape == (4, 3)
    assert scores[0].argmax() == 2 and scores[1].argmax() == 1
    # Words every item has ("a story") weigh less than a distinctive one.
    assert scores[1, 1] > 2 * scores[1, 0]
    np.testing.assert_allclose(scores[2], [1.0, scores[2, 1], scores[2, 2]], atol=1e-6)
    assert scores[2, 1] < 0.5
    np.testing.assert_allclose(scores[3], 0.0)


def test_zero_shot_scores_cosines_of_pretrained_embeddings() -> None:
    scorer = ZeroShotScorer.from_encoder(make_tiny_encoder(), CATALOG)
    scores = scorer(_queries(CATALOG[1], "pasta sauce"))
    assert scores.shape == (2, 3)
    assert scores[0].argmax() == 1 and scores[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert (np.abs(scores) <= 1.0 + 1e-5).all()


@pytest.fixture(scope="module")
def split():
    return tiny_split()


def test_id_only_beats_random_ranking_on_topic_data(split) -> None:
    items, train, test = split
    catalog = items["item_id"].to_numpy()
    builder = UserTextBuilder(dict(zip(items["item_id"], items["title"])))
    held_out = HeldOutSet.build(builder, catalog, train, test)
    ranks, _ = rank_held_out(id_only_scorer(train, catalog), held_out)
    # A random order puts the target at each of the C remaining positions alike: E[1/(rank+1)] = H(C)/C.
    remaining = len(catalog) - np.array([len(rows) for rows in held_out.excluded_rows])
    random_mrr = np.mean([np.sum(1.0 / np.arange(1, c + 1)) / c for c in remaining])
    assert per_query_metrics(ranks)["mrr"].mean() > 2 * random_mrr


def test_id_only_scores_unseen_items_alike(split) -> None:
    _, train, _ = split
    catalog = np.array(["space-0", "never-seen-1", "never-seen-2"])
    scores = id_only_scorer(train, catalog)(_queries("", "", users=["u0", "u1"]))
    np.testing.assert_array_equal(scores[:, 1], scores[:, 2])
    assert not np.allclose(scores[:, 0], scores[:, 1])
