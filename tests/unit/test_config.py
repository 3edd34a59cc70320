"""Config is data: JSON round-trip, overrides, clear errors for bad values."""

from __future__ import annotations

import pytest

from tfrecs_llm.config import Config


def test_json_round_trip(tmp_path) -> None:
    config = Config().with_overrides({"train.epochs": 7, "encoder.trainable": "full", "index.kind": "scann"})
    assert Config.from_json(config.to_json()) == config
    config.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("encoder.trainable", "some", "encoder.trainable must be one of"),
        ("train.temperature", 0, "train.temperature must be > 0"),
        ("index.kind", "faiss", "index.kind must be one of"),
        ("model.item_id_dropout", 1.5, "model.item_id_dropout must be in"),
        ("data.history_length", -1, "data.history_length must be >= 0"),
    ],
)
def test_bad_values_are_named(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config().with_overrides({key: value})


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown config key 'train.epoch'"):
        Config().with_overrides({"train.epoch": 3})
    with pytest.raises(ValueError, match="unknown keys \\['lr'\\] in config section 'train'"):
        Config.from_dict({"train": {"lr": 1}})
