"""Two MultiWorkerMirroredStrategy workers on 127.0.0.1 train the same model as one process.

Each worker runs the README's command (`tfrecs-llm train --strategy multi_worker`, TF_CONFIG
naming both) on a tiny BERT saved as a local preset; the chief's saved weights are compared with
an in-process single-worker run on the same data, seed and global batch (the shuffle order is
seeded, and the data sharding splits every global batch between the workers).

Tolerance: the runs differ only in float32 summation order (all-reduced per-worker gradients, a
gathered candidate matrix), about 1e-7 relative per step, and Adam's normalised steps keep the
weights that close (1.3e-7 measured on query embeddings). Per-worker in-batch negatives
instead of the global batch's move them by ~1e-2 (9.7e-3 measured), a wrong shard or a skipped
all-reduce by a similar step-size amount: 1e-5 separates the two by two orders of magnitude.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import save_tiny_preset
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
TOLERANCE = 1e-5
DEADLINE_SECONDS = 300  # a worker stuck in a collective fails the test instead of hanging CI
SETTINGS = {
    "encoder.sequence_length": 32,
    "train.batch_size": 32,
    "train.epochs": 2,
    # Item-id dropout draws random numbers per replica; off, both runs are deterministic.
    "model.item_id_dropout": 0.0,
    "ranking.enabled": False,
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(model_dir / "weights" / "model"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "VARIABLE_VALUE" in name
    }


def _wait(workers: list[subprocess.Popen], logs: list[Path]) -> None:
    """Waits for every worker; one failing (or the deadline) stops the others."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while any(w.poll() is None for w in workers):
        failed = any(w.poll() not in (None, 0) for w in workers)
        if failed or time.monotonic() > deadline:
            for w in workers:
                w.kill()
            for w in workers:
                w.wait()
            reason = "a worker failed" if failed else f"workers still running after {DEADLINE_SECONDS} s"
            output = "\n".join(f"--- worker {i}:\n{log.read_text()[-3000:]}" for i, log in enumerate(logs))
            pytest.fail(f"{reason}\n{output}")
        time.sleep(0.5)


def test_two_workers_train_the_same_model_as_one_process(tmp_path) -> None:
    preset = save_tiny_preset(tmp_path / "tiny_bert")
    tiny_items().to_csv(tmp_path / "items.csv", index=False)
    tiny_interactions().to_csv(tmp_path / "events.csv", index=False)
    settings = {**SETTINGS, "encoder.preset": str(preset)}

    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    command = [
        sys.executable, "-m", "tfrecs_llm", "train",
        "--items", str(tmp_path / "items.csv"), "--interactions", str(tmp_path / "events.csv"),
        "--holdout", "none", "--strategy", "multi_worker", "--quiet",
        "--output", str(tmp_path / "model"), "--checkpoint-dir", str(tmp_path / "checkpoints"),
    ]
    for key, value in settings.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    workers, logs, temp_dirs = [], [], []
    for index in range(2):
        logs.append(tmp_path / f"worker{index}.log")
        temp_dirs.append(tmp_path / f"tmp{index}")
        temp_dirs[-1].mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(temp_dirs[-1]),
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        with logs[-1].open("w") as log:
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path))

    # The single-process reference trains meanwhile, with the same data and settings.
    try:
        reference = Recommender.train(
            tmp_path / "items.csv", tmp_path / "events.csv", Config().with_overrides(settings), verbose=False
        )
        reference.save(tmp_path / "reference")
    finally:
        _wait(workers, logs)

    assert "saved model to" in logs[0].read_text()
    assert "the chief worker trains the ranker and writes --output" in logs[1].read_text()
    # Only the chief wrote checkpoints; the other worker's temporary copies are gone.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.suffix == ".index") == [
        "ckpt-1.index", "ckpt-2.index"
    ]
    assert not any(temp_dirs[1].iterdir())

    chief, single = _weights(tmp_path / "model"), _weights(tmp_path / "reference")
    assert sorted(chief) == sorted(single)
    differences = {name: float(np.abs(chief[name] - single[name]).max()) for name in chief}
    assert max(differences.values()) < TOLERANCE, differences

    # The comparison is sensitive: one epoch of training moves the weights far beyond it.
    epoch_one = tf.train.load_checkpoint(str(tmp_path / "checkpoints" / "ckpt-1"))
    kernel = "query_tower/projection/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    moved = np.abs(epoch_one.get_tensor("model/" + kernel) - chief[kernel]).max()
    assert moved > 100 * TOLERANCE
