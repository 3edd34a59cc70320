"""``tfrecs_llm.load_export``: an export loaded in a fresh Python process that never imports
TF Text or ScaNN itself, for both index kinds; and what a plain ``tf.saved_model.load`` says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.test_model_manager import TEXTS, exported_tiny_model
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.export.loaded import load_export
from tfrecs_llm.recommender import Recommender

REPO = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def scann_export(tmp_path_factory) -> Path:
    config = Config().with_overrides({"train.epochs": 1, "train.batch_size": 64, "encoder.sequence_length": 32})
    model = Recommender.train(tiny_items(per_topic=30), tiny_interactions(), config,
                              encoder=make_tiny_encoder(), verbose=False)
    return model.export(tmp_path_factory.mktemp("scann"), "tiny", index_kind="scann", k=5)


def _fresh(script: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=ENV, timeout=300)


LOAD = """
import json, sys
import tfrecs_llm
model = tfrecs_llm.load_export(sys.argv[1])
assert "tensorflow_text" in sys.modules  # imported by load_export, not by this script
print(json.dumps({"recs": model.recommend(%r, k=3), "scann": "scann" in sys.modules}))
""" % (TEXTS,)


@pytest.mark.parametrize("kind", ["brute_force", "scann"])
def test_load_export_works_in_a_fresh_process(kind, scann_export) -> None:
    path = exported_tiny_model() if kind == "brute_force" else scann_export
    result = _fresh(LOAD, path)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    expected = load_export(path).recommend(TEXTS, k=3)
    assert [[r["item_id"] for r in row] for row in answer["recs"]] == [[r["item_id"] for r in row] for row in expected]
    assert all(r["title"] for row in answer["recs"] for r in row)
    assert answer["scann"] == (kind == "scann")


def test_a_plain_saved_model_load_fails_on_the_missing_ops_and_load_export_says_what_to_do() -> None:
    script = "import sys, tensorflow as tf\ntf.saved_model.load(sys.argv[1])"
    result = _fresh(script, exported_tiny_model())
    assert result.returncode != 0 and "Op type not registered" in result.stderr
    from tfrecs_llm.export.loaded import OPS_HINT, is_missing_op_error

    assert is_missing_op_error(ValueError(result.stderr)) and "tfrecs_llm.load_export(path)" in OPS_HINT
