"""TF Serving's C++ loader, without Python, on both exports: stock TF Text ops, plus ScaNN's."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config
from tfrecs_llm.export.op_audit import audit_saved_model
from tfrecs_llm.export.predict import predict_saved_model
from tfrecs_llm.export.servability import ServabilityToolError, build_load_and_run, check_servable

pytestmark = pytest.mark.integration
TEXTS = ["space rocket planet", "pasta sauce cooking", "jazz music ; mystery history"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Recommender, dict[str, Path]]:
    """The tiny model and its two exports; the C++ check compiles (unless cached) meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        compiled = pool.submit(build_load_and_run)  # g++ runs in its own process, next to training.
        items = tiny_items(per_topic=30)
        overrides = {"train.epochs": 2, "train.batch_size": 32, "encoder.sequence_length": 32}
        recommender = Recommender.train(
            items, tiny_interactions(), Config().with_overrides(overrides), encoder=make_tiny_encoder(), verbose=False
        )
        base = tmp_path_factory.mktemp("exports")
        exports = {kind: recommender.export(base, kind, index_kind=kind, k=5) for kind in ("brute_force", "scann")}
        compiled.result()
    return recommender, exports


@pytest.fixture(scope="module")
def recommender(trained) -> Recommender:
    return trained[0]


@pytest.fixture(scope="module")
def exports(trained) -> dict[str, Path]:
    return trained[1]


def test_brute_force_export_serves_on_stock_with_the_in_process_top_k(recommender, exports) -> None:
    result = check_servable(exports["brute_force"], "stock", TEXTS)
    assert result.ok, result.error
    for expected, served in zip(recommender.recommend(TEXTS, k=5), result.recommendations, strict=True):
        assert [item for item, _ in served] == [item for item, _ in expected]
        np.testing.assert_allclose([s for _, s in served], [s for _, s in expected], atol=1e-4)


def test_scann_export_serves_with_the_scann_op_library(recommender, exports) -> None:
    result = check_servable(exports["scann"], "scann", TEXTS)
    assert result.ok, result.error
    assert result.op_libraries[-1].name == "_scann_ops.so"
    # The C++ loader answers exactly what the same export answers in Python (same searcher).
    in_python = predict_saved_model(exports["scann"], TEXTS)
    for expected, served in zip(in_python, result.recommendations, strict=True):
        assert [item for item, _ in served] == [item for item, _ in expected]
        np.testing.assert_allclose([s for _, s in served], [s for _, s in expected], atol=1e-4)
    # And the approximate search finds what exact search finds, at the recall it was tuned to.
    exact = recommender.recommend(TEXTS, k=5)
    overlap = np.mean([len({i for i, _ in a} & {i for i, _ in b}) / 5 for a, b in zip(exact, in_python)])
    tuned = json.loads((exports["scann"] / "assets.extra" / "model_card.json").read_text())["index"]["scann"]
    assert overlap >= tuned["target_recall"] - 0.1, (overlap, tuned)


def test_scann_ops_fail_a_stock_build_naming_the_missing_op(exports) -> None:
    result = check_servable(exports["scann"], "stock", TEXTS)
    assert not result.ok and result.stage == "run"
    assert result.missing_op in audit_saved_model(exports["scann"], "stock").outside_target
    assert result.missing_op.startswith("Scann>") and result.missing_op in result.error
    assert "NOT servable by a 'stock'" in result.format()


def test_missing_compiler_raises_an_actionable_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    with pytest.raises(ServabilityToolError, match="no C\\+\\+ compiler found .* CXX"):
        build_load_and_run(tmp_path)


def test_a_shallow_query_encoder_with_batching_parameters_serves_on_stock(tmp_path) -> None:
    """encoder.query_layers: the export holds a 1-layer query BERT; it uses only stock ops, the
    C++ loader serves it with the in-process answers, and it carries its batching parameters."""
    from tfrecs_llm.export.batching_config import FILE_NAME, BatchingParameters

    overrides = {"train.epochs": 2, "train.batch_size": 32, "encoder.sequence_length": 32, "encoder.query_layers": 1}
    shallow = Recommender.train(tiny_items(per_topic=30), tiny_interactions(), Config().with_overrides(overrides),
                                encoder=make_tiny_encoder(), verbose=False)
    assert int(shallow.encoder.backbone.num_layers) == 1
    export = shallow.export(tmp_path, "shallow", index_kind="brute_force", k=5)
    report = audit_saved_model(export, "stock")
    assert report.ok and "FastWordpieceTokenizeWithOffsets" in report.ops_from("tensorflow_text")
    result = check_servable(export, "stock", TEXTS)
    assert result.ok, result.error
    for expected, served in zip(shallow.recommend(TEXTS, k=5), result.recommendations, strict=True):
        assert [item for item, _ in served] == [item for item, _ in expected]
    assert BatchingParameters.from_file(export / "assets.extra" / FILE_NAME).max_batch_size >= 1
