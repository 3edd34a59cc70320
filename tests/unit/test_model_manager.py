"""ModelManager: TF-Serving-style version polling, refusal of broken versions, status, cleanup.

Version handling is tested on a toy SavedModel with the export's signatures (fast to load);
this module also holds the tiny BERT export the other serving tests share (trained once).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config
from tfrecs_llm.export.layout import staged_version, versions
from tfrecs_llm.export.warmup import write_warmup_requests
from tfrecs_llm.serving.errors import InvalidRequest, ServableNotFound
from tfrecs_llm.serving.model_manager import ModelManager, VersionStatus

TEXTS = ["space rocket planet", "pasta sauce cooking", ""]


@functools.lru_cache(maxsize=1)
def exported_tiny_model() -> Path:
    """A version folder of the tiny BERT model (exact index, k=5), trained once per test process."""
    config = Config().with_overrides(
        {"train.epochs": 2, "train.batch_size": 32, "encoder.sequence_length": 32}
    )
    recommender = Recommender.train(
        tiny_items(per_topic=30), tiny_interactions(), config, encoder=make_tiny_encoder(), verbose=False
    )
    return recommender.export(_scratch_folder(), "tiny", index_kind="brute_force", k=5)


class _ToyRecommender(tf.Module):
    """The serving contract of an export on a 4-item catalog, without BERT: loads in a blink."""

    def __init__(self) -> None:
        super().__init__()
        self.item_ids = tf.constant(["a", "b", "c", "d"])
        self.weights = tf.Variable([4.0, 3.0, 2.0, 1.0])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_text")])
    def serve(self, user_text: tf.Tensor) -> dict[str, tf.Tensor]:
        lengths = tf.cast(tf.strings.length(user_text), tf.float32)[:, None]
        batch = tf.shape(user_text)[0]
        return {"item_ids": tf.tile(self.item_ids[None, :], [batch, 1]), "scores": self.weights + lengths}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_text"),
            tf.TensorSpec([None, None], tf.string, name="exclude_item_ids"),
        ]
    )
    def serve_with_exclusions(self, user_text: tf.Tensor, exclude_item_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = self.serve(user_text)
        excluded = tf.reduce_any(outputs["item_ids"][:, :, None] == exclude_item_ids[:, None, :], axis=-1)
        return {**outputs, "scores": tf.where(excluded, -float("inf"), outputs["scores"])}


@functools.lru_cache(maxsize=1)
def toy_export() -> Path:
    """A version folder with the export's signatures but no BERT (for version-handling tests)."""
    module = _ToyRecommender()
    folder = _scratch_folder() / "toy"
    signatures = {
        "serving_default": module.serve.get_concrete_function(),
        "recommend_with_exclusions": module.serve_with_exclusions.get_concrete_function(),
    }
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return folder


def publish(model_dir: Path, version: int, source: Path, prepare: Callable[[Path], None] | None = None) -> Path:
    """Publishes a copy of ``source`` as ``model_dir/version`` the way the exporter does: written
    in a hidden staging folder (changed by ``prepare``), then renamed."""
    with staged_version(model_dir, version) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if prepare is not None:
            prepare(staging)
    return model_dir / str(version)


def _scratch_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tfrecs-serving-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _garbage_graph(folder: Path) -> None:
    (folder / "saved_model.pb").write_bytes(b"this is not a saved model at all")


def _no_variables(folder: Path) -> None:
    shutil.rmtree(folder / "variables")


def test_serves_the_newest_version_with_status_and_validated_inputs(tmp_path) -> None:
    publish(tmp_path, 1, toy_export())
    manager = ModelManager(tmp_path, "tiny")
    assert manager.poll_once() == 1
    model = manager.get("tiny")
    assert model.version == 1 and manager.get("tiny", 1) is model
    assert manager.status("tiny") == [VersionStatus(1, "AVAILABLE")]
    assert manager.status("tiny")[0].to_proto().state == 30  # ModelVersionStatus.AVAILABLE
    outputs = model.run("serving_default", {"user_text": np.array(TEXTS, dtype=object)})
    assert outputs["item_ids"].shape == (3, 4) and outputs["scores"].dtype == np.float32
    with pytest.raises(ServableNotFound, match=r"Specific\(tiny, 2\)"):
        manager.get("tiny", 2)
    with pytest.raises(ServableNotFound, match=r"Latest\(other\)"):
        manager.get("other")
    with pytest.raises(ServableNotFound, match="Could not find version 2 of model tiny"):
        manager.status("tiny", 2)
    with pytest.raises(InvalidRequest, match="missing: \\['exclude_item_ids'\\]"):
        model.run("recommend_with_exclusions", {"user_text": np.array(["a"], dtype=object)})
    with pytest.raises(InvalidRequest, match="must hold strings"):
        model.run("serving_default", {"user_text": np.array([1.0, 2.0])})
    mismatched = {"user_text": np.array(["a", "b"], dtype=object), "exclude_item_ids": np.array([["a"]], dtype=object)}
    with pytest.raises(InvalidRequest, match="share the batch size"):
        model.run("recommend_with_exclusions", mismatched)
    with pytest.raises(InvalidRequest, match='signature name: "nope" not found'):
        model.run("nope", {})


def test_partial_or_corrupt_versions_are_refused_once_until_their_files_change(tmp_path, caplog) -> None:
    publish(tmp_path, 1, toy_export())
    manager = ModelManager(tmp_path, "tiny")
    manager.poll_once()
    publish(tmp_path, 2, toy_export(), _garbage_graph)
    publish(tmp_path, 3, toy_export(), _no_variables)
    with caplog.at_level(logging.WARNING, logger="tfrecs_llm.serving.model_manager"):
        for _ in range(3):
            assert manager.poll_once() == 1
    assert caplog.text.count("refusing version 3") == 1 and caplog.text.count("refusing version 2") == 1
    statuses = {s.version: s for s in manager.status("tiny")}
    assert statuses[1].state == "AVAILABLE"
    assert (statuses[2].state, statuses[2].error_code) == ("END", "DATA_LOSS")
    assert "not a SavedModel" in statuses[2].error_message
    assert (statuses[3].state, statuses[3].error_code) == ("END", "NOT_FOUND")
    assert "no variables/" in statuses[3].error_message
    assert manager.get("tiny").version == 1

    shutil.copytree(toy_export() / "variables", tmp_path / "3" / "variables")  # the copy finishes
    assert manager.poll_once() == 3
    assert {s.version: s.state for s in manager.status("tiny")} == {1: "END", 2: "END", 3: "AVAILABLE"}


def test_a_refused_version_fixed_in_place_with_the_same_sizes_and_times_is_retried(tmp_path) -> None:
    publish(tmp_path, 1, toy_export())
    graph = tmp_path / "1" / "saved_model.pb"
    good = graph.read_bytes()
    stamp = graph.stat()
    graph.write_bytes(bytes(b ^ 0xFF for b in good))  # corrupt, same size
    os.utime(graph, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    manager = ModelManager(tmp_path, "tiny")
    assert manager.poll_once() is None and manager.poll_once() is None
    [status] = manager.status("tiny")
    assert status.state == "END"
    graph.write_bytes(good)  # fixed, as `cp -p` would: same size, same modification time
    os.utime(graph, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert manager.poll_once() == 1
    assert [(s.version, s.state) for s in manager.status("tiny")] == [(1, "AVAILABLE")]


def test_a_version_failing_its_warmup_is_never_served(tmp_path, caplog) -> None:
    publish(tmp_path, 1, toy_export(), lambda d: write_warmup_requests(d, "tiny", ["x"], signature_name="nope"))
    manager = ModelManager(tmp_path, "tiny")
    assert manager.poll_once() is None
    [status] = manager.status("tiny")
    assert status.state == "END" and "warmup request 0 failed" in status.error_message
    with pytest.raises(ServableNotFound):
        manager.get("tiny")
    publish(tmp_path, 2, toy_export(), lambda d: write_warmup_requests(d, "tiny", TEXTS))
    with caplog.at_level(logging.INFO, logger="tfrecs_llm.serving.model_manager"):
        assert manager.poll_once() == 2
    assert "loaded version 2 of tiny (3 warmup requests)" in caplog.text


def test_keep_versions_deletes_old_folders_but_never_loaded_or_newer_ones(tmp_path) -> None:
    manager = ModelManager(tmp_path, "tiny", keep_versions=1, keep_previous_loaded=True)
    publish(tmp_path, 1, toy_export())
    manager.poll_once()
    publish(tmp_path, 2, toy_export())
    assert manager.poll_once() == 2
    assert versions(tmp_path) == [1, 2]  # 1 is still loaded (the previous version)
    publish(tmp_path, 3, toy_export())
    publish(tmp_path, 4, toy_export(), _no_variables)
    assert manager.poll_once() == 3
    assert versions(tmp_path) == [2, 3, 4]  # 1 deleted; 2 loaded; 4 newer (refused) is left alone
    assert manager.get("tiny", 2).version == 2
    with pytest.raises(ServableNotFound):
        manager.get("tiny", 1)
    assert [s.version for s in manager.status("tiny")] == [2, 3, 4]


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="keep_versions must be >= 1"):
        ModelManager("models/tiny", "tiny", keep_versions=0)
    with pytest.raises(ValueError, match="poll_seconds must be > 0"):
        ModelManager("models/tiny", "tiny", poll_seconds=0)
