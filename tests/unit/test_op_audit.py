"""Op audit: which op types an export needs and whether stock or ScaNN TF Serving registers them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config
from tfrecs_llm.export.op_audit import audit_saved_model, saved_model_op_types

SCANN_OPS = ("Scann>ScannSearchBatched", "Scann>TensorsToScann")


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    items = tiny_items(per_topic=30)
    config = Config().with_overrides({"train.epochs": 1, "train.batch_size": 32, "encoder.sequence_length": 32})
    recommender = Recommender.train(items, tiny_interactions(), config, encoder=make_tiny_encoder(), verbose=False)
    base = tmp_path_factory.mktemp("exports")
    return {kind: recommender.export(base, kind, index_kind=kind, k=5) for kind in ("brute_force", "scann")}


def test_brute_force_export_passes_the_stock_audit(exports) -> None:
    report = audit_saved_model(exports["brute_force"], "stock")
    assert report.ok and report.outside_target == ()
    assert "FastWordpieceTokenizeWithOffsets" in report.ops_from("tensorflow_text")
    assert report.ops_from("scann") == () and report.ops_from(None) == ()
    assert {"StatefulPartitionedCall", "TopKV2"} <= set(report.ops_from("tensorflow"))
    assert "OK" in report.format()


def test_scann_export_fails_stock_naming_exactly_its_scann_ops(exports) -> None:
    report = audit_saved_model(exports["scann"].parent, "stock")  # a model folder: its latest version
    assert not report.ok
    assert report.outside_target == SCANN_OPS
    assert report.ops_from("scann") == SCANN_OPS
    assert report.namespaced["Scann"] == SCANN_OPS
    text = report.format()
    assert "NOT SERVABLE" in text and all(f"{op}: registered by ScaNN" in text for op in SCANN_OPS)


def test_scann_export_passes_the_scann_target(exports) -> None:
    report = audit_saved_model(exports["scann"], "scann")
    assert report.ok and set(SCANN_OPS) <= set(report.op_types)
    assert set(report.target_versions) == {"tensorflow", "tensorflow_text", "scann"}


def test_unknown_ops_fail_and_function_calls_are_not_ops(exports, tmp_path) -> None:
    export = tmp_path / "1"
    shutil.copytree(exports["brute_force"], export)
    saved_model = saved_model_pb2.SavedModel.FromString((export / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    graph.node.add(name="custom", op="Custom>NotRegistered")
    graph.node.add(name="call", op=graph.library.function[0].signature.name)  # a function call node
    (export / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    assert graph.library.function[0].signature.name not in saved_model_op_types(export)
    report = audit_saved_model(export, "scann")
    assert report.outside_target == ("Custom>NotRegistered",)
    assert "Custom>NotRegistered: registered by no known library" in report.format()


def test_python_only_ops_fail_every_target(tmp_path) -> None:
    class PythonCallback(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x: tf.Tensor) -> tf.Tensor:
            return tf.py_function(lambda v: v * 2, [x], tf.float32)

    module = PythonCallback()
    tf.saved_model.save(module, str(tmp_path), signatures=module.serve.get_concrete_function())
    report = audit_saved_model(tmp_path, "scann")
    assert report.outside_target == ("EagerPyFunc",)
    assert "EagerPyFunc: its kernel runs Python code" in report.format()


def test_unknown_target_is_rejected(exports) -> None:
    with pytest.raises(ValueError, match="target must be one of"):
        audit_saved_model(exports["brute_force"], "gpu")
