"""The real checkpoint on the bundled sample: quality vs popularity, export size, CLI path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import save_tiny_preset
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config, RankingConfig
from tfrecs_llm.data.sample import load_sample
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def split():
    raw_items, raw_events = load_sample()
    items = validate_items(raw_items)
    events = validate_interactions(raw_events, items)
    train, test = leave_last_out(events)
    return items, train, test


@pytest.fixture(scope="module")
def trained(split) -> Recommender:
    """Retrieval trained without each user's last training event, which the ranker learns from
    (as `tfrecs-llm train` does)."""
    items, train, _ = split
    retrieval_train, _ = leave_last_out(train)
    # Each user's 4 most recent events: BERT reads a third of the user texts, the claims hold.
    config = Config().with_overrides({"train.max_events_per_user": 4})
    return Recommender.train(items, retrieval_train, config, verbose=False)


@pytest.fixture(scope="module")
def lambda_sweep(trained, split) -> dict[float, dict[str, float]]:
    _, train, test = split
    retrieval_train, ranker_events = leave_last_out(train)
    results = {}
    for lambda_div in (0.0, 0.1, 0.3, 1.0):
        trained.train_ranker(ranker_events, RankingConfig(lambda_div=lambda_div), verbose=False,
                             history=retrieval_train)
        results[lambda_div] = trained.evaluate_ranking(train, test)
    print(json.dumps(results, indent=1))
    trained.train_ranker(ranker_events, RankingConfig(), verbose=False, history=retrieval_train)
    return results


def test_model_reaches_1_5x_popularity_recall_at_10(trained, split) -> None:
    _, train, test = split
    metrics = trained.evaluate(train, test)
    print(json.dumps(metrics, indent=2))
    popularity = metrics["popularity"]["recall@10"]
    assert popularity >= 0.05
    assert metrics["model"]["recall@10"] >= 1.5 * popularity


def test_ranker_improves_ndcg_over_retrieval_order(lambda_sweep) -> None:
    relevance_only = lambda_sweep[0.0]
    assert relevance_only["ranker"]["ndcg@10"] > relevance_only["retrieval"]["ndcg@10"]


def test_lambda_trades_ndcg_for_diversity(lambda_sweep) -> None:
    lambdas = sorted(lambda_sweep)
    entropy = [lambda_sweep[lam]["ranker"]["category_entropy@10"] for lam in lambdas]
    ild = [lambda_sweep[lam]["ranker"]["ild@10"] for lam in lambdas]
    assert entropy == sorted(entropy) and ild == sorted(ild), (entropy, ild)
    base = lambda_sweep[0.0]["ranker"]
    first = next(lam for lam in lambdas if lambda_sweep[lam]["ranker"]["category_entropy@10"] >= 1.1 * base["category_entropy@10"])
    assert lambda_sweep[first]["ranker"]["ndcg@10"] >= 0.9 * base["ndcg@10"]


def test_saved_ranker_reloads_with_identical_recommendations(trained, lambda_sweep, tmp_path) -> None:
    texts = ["rockets, planets and telescopes", "risotto ; homemade pasta"]
    loaded = Recommender.load(trained.save(tmp_path / "model"))
    assert loaded.ranker is not None
    for got, want in zip(loaded.recommend(texts, k=5), trained.recommend(texts, k=5)):
        assert [i for i, _ in got] == [i for i, _ in want]


def test_savedmodel_stores_bert_once(trained, tmp_path) -> None:
    path = trained.export(tmp_path, "sample", index_kind="brute_force")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    weights = sum(v.numpy().nbytes for v in trained.encoder.bert_variables)
    index = trained.item_embeddings().nbytes
    assert size <= 1.1 * (weights + index), f"{size / 1e6:.1f} MB for {(weights + index) / 1e6:.1f} MB of weights"


def test_cli_train_export_recommend(tmp_path) -> None:
    """The CLI's plumbing on the sample; a tiny BERT preset keeps it fast (the real checkpoint's
    quality is covered above)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "tfrecs_llm", *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    preset = save_tiny_preset(tmp_path / "tiny_bert")
    fast = ["--set", "train.max_events_per_user=2", "--set", "encoder.sequence_length=32",
            "--set", f"encoder.preset={preset}"]
    trained = run("train", "--sample", "--output", "model", "--epochs", "1", "--quiet", *fast)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "popularity" in trained.stdout and (tmp_path / "model" / "metrics.json").is_file()
    # The ranking head is off unless asked for (it does not beat retrieval order on MovieLens-100K).
    assert "ranker" not in json.loads((tmp_path / "model" / "metrics.json").read_text())
    exported = run("export", "--model", "model", "--base-path", "exports", "--name", "sample")
    assert exported.returncode == 0, exported.stderr[-2000:]
    recommended = run("recommend", "--saved-model", "exports/sample", "rockets and planets", "--k", "3")
    assert recommended.returncode == 0, recommended.stderr[-2000:]
    assert len([line for line in recommended.stdout.splitlines() if line.strip()[:2] in {"1.", "2.", "3."}]) == 3
