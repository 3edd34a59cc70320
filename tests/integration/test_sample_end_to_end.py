"""The real checkpoint on the bundled sample: quality vs popularity, export size, CLI path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfrecs_llm.api import Recommender
from tfrecs_llm.config import Config
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
    items, train, _ = split
    return Recommender.train(items, train, Config(), verbose=False)


def test_model_reaches_1_5x_popularity_recall_at_10(trained, split) -> None:
    _, train, test = split
    metrics = trained.evaluate(train, test)
    print(json.dumps(metrics, indent=2))
    popularity = metrics["popularity"]["recall@10"]
    assert popularity >= 0.05
    assert metrics["model"]["recall@10"] >= 1.5 * popularity


def test_savedmodel_stores_bert_once(trained, tmp_path) -> None:
    path = trained.export(tmp_path, "sample", index_kind="brute_force")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    weights = sum(v.numpy().nbytes for v in trained.encoder.bert_variables)
    index = trained.item_embeddings().nbytes
    assert size <= 1.1 * (weights + index), f"{size / 1e6:.1f} MB for {(weights + index) / 1e6:.1f} MB of weights"


def test_cli_train_export_recommend(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "tfrecs_llm", *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    fast = ["--set", "train.max_events_per_user=2", "--set", "encoder.sequence_length=32"]
    trained = run("train", "--sample", "--output", "model", "--epochs", "1", "--quiet", *fast)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "popularity" in trained.stdout and (tmp_path / "model" / "metrics.json").is_file()
    exported = run("export", "--model", "model", "--base-path", "exports", "--name", "sample")
    assert exported.returncode == 0, exported.stderr[-2000:]
    recommended = run("recommend", "--saved-model", "exports/sample", "rockets and planets", "--k", "3")
    assert recommended.returncode == 0, recommended.stderr[-2000:]
    assert len([line for line in recommended.stdout.splitlines() if line.strip()[:2] in {"1.", "2.", "3."}]) == 3
