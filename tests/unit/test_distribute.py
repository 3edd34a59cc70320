"""Choosing a tf.distribute strategy, and the errors for a missing or malformed TF_CONFIG.

That several workers train the same model as one process is checked by
tests/integration/test_multi_worker.py.
"""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.cli import main
from tfrecs_llm.config import Config
from tfrecs_llm.training.distribute import is_chief, make_strategy, parse_tf_config

CLUSTER = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}


def test_default_strategy_is_the_enclosing_one_and_is_chief() -> None:
    assert make_strategy("default") is tf.distribute.get_strategy()
    assert is_chief(make_strategy("default"))
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    with mirrored.scope():
        assert make_strategy("default") is mirrored


def test_unknown_strategy_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"strategy must be one of \('default', 'mirrored', 'multi_worker'\), got 'tpu'"):
        make_strategy("tpu")
    with pytest.raises(ValueError, match="train.strategy must be one of"):
        Config().with_overrides({"train.strategy": "horovod"})


def test_multi_worker_without_tf_config_says_what_to_set(monkeypatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"needs the TF_CONFIG environment variable.*\"cluster\""):
        make_strategy("multi_worker")


def test_valid_tf_config_is_returned() -> None:
    raw = json.dumps({"cluster": {**CLUSTER, "chief": ["10.0.0.3:2222"]}, "task": {"type": "chief", "index": 0}})
    assert parse_tf_config(raw)["task"] == {"type": "chief", "index": 0}


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{cluster: workers}", "TF_CONFIG is not valid JSON"),
        (json.dumps(["10.0.0.1:2222"]), "must be a JSON object with a 'cluster' object"),
        (json.dumps({"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}), r"jobs \['ps'\]"),
        (json.dumps({"cluster": {"worker": ["10.0.0.1"]}, "task": {"type": "worker", "index": 0}}),
         r"cluster\['worker'\] must be a non-empty list of 'host:port'"),
        (json.dumps({"cluster": CLUSTER}), "task must name this process's job and index"),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "chief", "index": 0}}), "task must name"),
        (json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}),
         r"index must be an integer in \[0, 2\) for job 'worker', got 2"),
    ],
)
def test_malformed_tf_config_names_the_problem(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tf_config(raw)


def test_cli_multi_worker_without_tf_config_is_a_one_paragraph_error(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = main(["train", "--sample", "--strategy", "multi_worker", "--output", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "TF_CONFIG" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_encoder_made_outside_the_strategy_scope_is_refused() -> None:
    encoder = make_tiny_encoder()
    config = Config().with_overrides({"encoder.sequence_length": 32})
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        with pytest.raises(ValueError, match="the text encoder has .* variables created outside the distribution strategy's scope"):
            Recommender.train(tiny_items(), tiny_interactions(), config, encoder=encoder, verbose=False)
