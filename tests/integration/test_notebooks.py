"""The tutorial notebooks run top to bottom on the bundled sample, in order (02 and 03 reuse the
model 01 saves), and write the figures they show."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).parents[2]
NOTEBOOKS = REPO / "notebooks"
FIGURES = {
    "01_train_two_tower": ["01_training_loss.png", "01_model_vs_baselines.png", "01_recall_at_k.png"],
    "02_ranking_and_diversity": ["02_lambda_tradeoff.png"],
    "03_export_and_serve": ["03_rest_latency.png"],
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KERNEL = "tfrecs-llm-tests"


def _kernel_specs(kernels_dir: Path) -> KernelSpecManager:
    """Only a kernelspec running this interpreter (the project's venv), whatever kernelspecs the
    user has installed."""
    from ipykernel.kernelspec import write_kernel_spec

    write_kernel_spec(kernels_dir / KERNEL)  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
    return KernelSpecManager(kernel_dirs=[str(kernels_dir)])


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict:
    """Runs the notebooks in order in one output folder; per notebook its executed cells and the
    error (None if it ran through), so each notebook's test reports its own failure."""
    output = tmp_path_factory.mktemp("notebook_output")
    specs = _kernel_specs(tmp_path_factory.mktemp("kernels"))
    env = {**os.environ, "TFRECS_NOTEBOOK_OUTPUT": str(output), "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = {"output": output}
    for name in FIGURES:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        kernel = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
        client = NotebookClient(
            notebook, km=kernel, timeout=600, resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        started = time.perf_counter()
        try:
            client.execute(env=env)
            error = None
        except CellExecutionError as failure:
            error = str(failure)
        finally:
            # nbclient shuts down only kernels it created; an idle TensorFlow kernel left
            # running keeps using CPU for the rest of the test run.
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        results[name] = (notebook, error)
    return results


def _text_outputs(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header; fails on anything that is not a PNG."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_committed_notebooks_have_no_outputs() -> None:
    for name in FIGURES:
        notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
        code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
        assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code), name


@pytest.mark.integration
@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_and_writes_its_figures(executed, name: str) -> None:
    notebook, error = executed[name]
    assert error is None, error[-3000:]
    inline = sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    assert inline >= len(FIGURES[name]), f"{name} displayed {inline} figures inline"
    for figure in FIGURES[name]:
        path = executed["output"] / figure
        assert path.is_file(), f"{name} did not write {figure}"
        width, height = _png_size(path)
        assert width >= 400 and height >= 300 and path.stat().st_size > 10_000, (figure, width, height)


@pytest.mark.integration
def test_trained_model_beats_popularity(executed) -> None:
    notebook, error = executed["01_train_two_tower"]
    assert error is None, error[-3000:]
    found = re.search(r"recall@10: model ([\d.]+) vs popularity ([\d.]+)", _text_outputs(notebook))
    assert found, "the notebook did not print the model-vs-popularity line"
    model, popularity = map(float, found.groups())
    assert model > 1.5 * popularity > 0, (model, popularity)


@pytest.mark.integration
def test_ranker_lifts_ndcg_and_lambda_adds_diversity(executed) -> None:
    notebook, error = executed["02_ranking_and_diversity"]
    assert error is None, error[-3000:]
    text = _text_outputs(notebook)
    ndcg = re.search(r"NDCG@10: retrieval order ([\d.]+), ranker at lambda=0 ([\d.]+)", text)
    entropy = re.search(r"category entropy@10: retrieval order ([\d.]+), highest ([\d.]+)", text)
    assert ndcg and entropy, "the notebook did not print its NDCG and entropy summary"
    retrieval_ndcg, ranker_ndcg = map(float, ndcg.groups())
    retrieval_entropy, highest_entropy = map(float, entropy.groups())
    assert ranker_ndcg > retrieval_ndcg, (ranker_ndcg, retrieval_ndcg)
    assert highest_entropy > retrieval_entropy, (highest_entropy, retrieval_entropy)


@pytest.mark.integration
def test_served_model_answers_like_the_savedmodel(executed) -> None:
    notebook, error = executed["03_export_and_serve"]
    assert error is None, error[-3000:]
    assert "REST answers match the in-process SavedModel: True" in _text_outputs(notebook)
    assert "server stopped" in _text_outputs(notebook)
