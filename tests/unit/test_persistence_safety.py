"""Saving and exporting never lose a user's data: no folder replaced that is not a model, no
models.config edits overwritten, published folders readable by other users (the umask's modes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.data.atomic_dir import publish_dir
from tfrecs_llm.export.model_config import read_models_config, update_models_config
from tfrecs_llm.recommender import Recommender


@pytest.fixture(scope="module")
def model() -> Recommender:
    config = Config().with_overrides({"train.epochs": 1, "encoder.sequence_length": 32, "train.batch_size": 64})
    return Recommender.train(tiny_items(), tiny_interactions(num_users=12), config,
                             encoder=make_tiny_encoder(), verbose=False)


def test_save_refuses_a_folder_that_is_not_a_model_and_leaves_it_untouched(model, tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("my thesis")
    with pytest.raises(FileExistsError, match="not a saved tfrecs_llm model .*refusing to replace it"):
        model.save(work)
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert (work / "notes.txt").read_text() == "my thesis"
    (tmp_path / "a_file").write_text("data")
    with pytest.raises(FileExistsError, match="exists and is not a directory"):
        model.save(tmp_path / "a_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "work"]  # no staging left


def test_save_replaces_a_saved_model_and_fills_an_empty_folder(model, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")
    first = model.save(tmp_path / "model")
    (first / "stale-extra-file").write_text("from an older save")
    again = model.save(tmp_path / "model")
    assert again == first and not (again / "stale-extra-file").exists()
    assert Recommender.load(again, encoder=make_tiny_encoder()).catalog.item_ids.tolist() == model.catalog.item_ids.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "model"]


def test_the_swap_leaves_the_old_or_the_new_folder_never_neither(tmp_path) -> None:
    old, new = tmp_path / "model", tmp_path / ".model.staging"
    old.mkdir()
    (old / "manifest.json").write_text("old")
    new.mkdir()
    (new / "manifest.json").write_text("new")
    publish_dir(new, old)
    assert (old / "manifest.json").read_text() == "new" and not new.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_saved_models_and_exports_get_the_permissions_of_plain_writes(model, tmp_path, umask) -> None:
    previous = os.umask(umask)
    try:
        saved = model.save(tmp_path / "model")
        version = model.export(tmp_path / "exports", "tiny", index_kind="brute_force", k=3)
        tf.saved_model.save(tf.Module(), str(tmp_path / "plain_savedmodel"))  # what TF itself gives
        (tmp_path / "plain_dir").mkdir()
        (tmp_path / "plain_file").write_text("x")
    finally:
        os.umask(previous)
    plain = tmp_path / "plain_savedmodel"
    assert _mode(saved) == _mode(tmp_path / "plain_dir") == 0o777 & ~umask
    assert _mode(saved / "manifest.json") == _mode(tmp_path / "plain_file") == 0o666 & ~umask
    assert _mode(version) == _mode(plain) and _mode(version / "variables") == _mode(plain / "variables")
    assert _mode(version / "saved_model.pb") == _mode(plain / "saved_model.pb")
    assert _mode(tmp_path / "exports" / "models.config") == 0o666 & ~umask
    if not umask & 0o004:  # others may read: a TF Serving running as another user can load it
        assert all(_mode(p) & 0o004 for p in [saved, *saved.rglob("*"), version, *version.rglob("*")])


def test_models_config_is_created_then_only_gains_missing_models(tmp_path) -> None:
    update_models_config(tmp_path, "first")
    [entry] = read_models_config(tmp_path / "models.config").model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("first", "/models/first", "tensorflow")

    edited = (
        "# served from the shared volume\n"
        "model_config_list {\n"
        "  config {\n"
        '    name: "first"  # the old one\n'
        '    base_path: "/srv/tf/first"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 3 } }\n"
        "  }\n"
        "}\n"
    )
    (tmp_path / "models.config").write_text(edited)
    update_models_config(tmp_path, "first")
    assert (tmp_path / "models.config").read_text() == edited  # listed already: untouched

    update_models_config(tmp_path, "second")
    text = (tmp_path / "models.config").read_text()
    assert text.startswith(edited[: edited.rindex("}")])  # every line the user wrote, in place
    entries = read_models_config(tmp_path / "models.config").model_config_list.config
    assert [(e.name, e.base_path) for e in entries] == [("first", "/srv/tf/first"), ("second", "/srv/tf/second")]
    assert list(entries[0].model_version_policy.specific.versions) == [3]


def test_an_unparseable_models_config_is_left_alone(tmp_path, caplog) -> None:
    (tmp_path / "models.config").write_text("this is { not a config")
    update_models_config(tmp_path, "tiny")
    assert (tmp_path / "models.config").read_text() == "this is { not a config"
    assert "left unchanged" in caplog.text
