"""Faults a trusted server survives, on a real ``tfrecs-llm serve`` process (loopback only,
bounded in time): SIGKILL under a feedback load, SIGKILL during export and during save, hostile
request sizes with the server's memory measured."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import save_tiny_preset
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.export.layout import versions
from tfrecs_llm.export.predict import predict_saved_model
from tfrecs_llm.recommender import Recommender

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
TEXTS = ["space rocket planet", "pasta sauce cooking", "jazz music history"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> dict[str, Path]:
    """A tiny model saved with a local BERT preset (so subprocesses load it from disk) and its
    first export."""
    root = tmp_path_factory.mktemp("faults")
    preset = save_tiny_preset(root / "tiny_bert")
    config = Config().with_overrides({"train.epochs": 1, "train.batch_size": 64, "encoder.sequence_length": 32,
                                      "encoder.preset": str(preset)})
    model = Recommender.train(tiny_items(per_topic=30), tiny_interactions(), config, verbose=False)
    saved = model.save(root / "model")
    model.export(root / "exports", "tiny", index_kind="brute_force", k=5)
    return {"root": root, "model": saved, "exports": root / "exports" / "tiny"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(model_base_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``tfrecs-llm serve`` in its own process; yields it and its URL once version 1 is served."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tfrecs_llm", "serve", "--model-base-path", str(model_base_path),
         "--rest-api-port", str(port), "--file-system-poll-wait-seconds", "0.2"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the server did not come up"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/models/tiny", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_every_acknowledged_event_survives_a_sigkill_exactly_once(deployment) -> None:
    acknowledged: dict[str, list[int]] = {}  # user id -> event ids the server acknowledged
    stop = threading.Event()

    def feedback(url: str, worker: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                user = f"load-{worker}-{n}"
                events = [{"user_id": user, "item_id": item, "type": "like", "timestamp": 1_800_000_000 + i}
                          for i, item in enumerate(("space-1", "cooking-2", "music-3"))]
                try:
                    response = http.post("/v1/feedback", json={"events": events})
                except httpx.HTTPError:
                    return  # the server died under us: this request was not acknowledged
                if response.status_code == 200:
                    acknowledged[user] = response.json()["event_ids"]

    log_path = deployment["exports"] / "events.sqlite"
    with serving(deployment["exports"]) as (server, url):
        workers = [threading.Thread(target=feedback, args=(url, w)) for w in range(8)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        server.wait(timeout=30)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert len(acknowledged) >= 150

    with sqlite3.connect(log_path) as db:
        rows = db.execute("SELECT event_id, user_id, item_id, type, timestamp FROM events "
                          "WHERE user_id LIKE 'load-%'").fetchall()
    by_user: dict[str, list[tuple]] = {}
    for row in rows:
        by_user.setdefault(row[1], []).append(row)
    for user, ids in acknowledged.items():  # acknowledged: stored, exactly once, whole
        stored = sorted(by_user[user])
        assert [row[0] for row in stored] == sorted(ids)
        assert [(row[2], row[3]) for row in stored] == [("space-1", "like"), ("cooking-2", "like"),
                                                       ("music-3", "like")]
    assert all(len(stored) == 3 for stored in by_user.values())  # unacknowledged: all or nothing
    assert len({row[0] for row in rows}) == len(rows)
    print(f"SIGKILL under load: {len(acknowledged)} requests acknowledged ({3 * len(acknowledged)} events), "
          f"{len(by_user)} requests stored, {len(by_user) - len(acknowledged)} stored but unacknowledged")

    # Restarted, the server takes feedback again, with ids after every stored one.
    with serving(deployment["exports"]) as (_, url):
        event = {"user_id": "after-restart", "item_id": "space-2", "type": "view"}
        [new_id] = httpx.post(f"{url}/v1/feedback", json=event, timeout=30).json()["event_ids"]
    assert new_id > max(row[0] for row in rows)


def _kill_when(process: subprocess.Popen, appeared, delay: float) -> bool:
    """SIGKILLs ``process`` ``delay`` seconds after ``appeared()`` turns true; False if it ended first."""
    deadline = time.monotonic() + 120
    while not appeared():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return True


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5])
def test_a_sigkill_during_export_publishes_nothing_and_the_served_version_stays(deployment, delay) -> None:
    model_dir = deployment["root"] / f"kill_export_{delay}"
    model_dir.parent.mkdir(exist_ok=True)
    subprocess.run(["cp", "-r", str(deployment["exports"]), str(model_dir)], check=True)
    before = versions(model_dir)
    export = subprocess.Popen(
        [sys.executable, "-m", "tfrecs_llm", "export", "--model", str(deployment["model"]),
         "--base-path", str(model_dir.parent), "--name", model_dir.name],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    killed = _kill_when(export, lambda: any(p.name.startswith(".") for p in model_dir.iterdir()), delay)
    print(f"export killed after {delay} s in staging: {killed}")
    if killed:
        assert versions(model_dir) == before  # nothing half-written is visible to TF Serving
    else:  # it finished first: then the new version is whole
        assert versions(model_dir) == [*before, before[-1] + 1]
    for version in versions(model_dir):
        assert len(predict_saved_model(model_dir / str(version), TEXTS)[0]) == 5


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_a_sigkill_during_save_leaves_the_old_or_the_new_model_whole(deployment, delay) -> None:
    target = deployment["root"] / f"kill_save_{delay}"
    subprocess.run(["cp", "-r", str(deployment["model"]), str(target)], check=True)
    script = (
        "import sys; from tfrecs_llm import Recommender; "
        "m = Recommender.load(sys.argv[1]); m.save(sys.argv[1])"
    )
    save = subprocess.Popen([sys.executable, "-c", script, str(target)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = _kill_when(save, lambda: any(p.name.startswith(f".{target.name}.") for p in target.parent.iterdir()), delay)
    print(f"save killed after {delay} s in staging: {killed}")
    reloaded = Recommender.load(target)
    assert len(reloaded.recommend(TEXTS, k=5)[0]) == 5


def test_hostile_sizes_are_answered_with_bounded_memory(deployment) -> None:
    catalog = [f"{topic}-{i}" for topic in ("space", "cooking", "music") for i in range(30)]
    with serving(deployment["exports"]) as (server, url), httpx.Client(base_url=url, timeout=120) as http:
        assert http.post("/v1/models/tiny:predict", json={"instances": TEXTS}).status_code == 200
        baseline = _peak_rss_mb(server.pid)
        requests = [
            {"instances": ["space rocket " * 180] * 256},  # max batch of max-length texts (~1 MB)
            {"signature_name": "recommend_with_exclusions",  # max exclusions, all known ids
             "inputs": {"user_text": TEXTS * 20, "exclude_item_ids": [(catalog * 12)[:1000]] * 60}},
            {"signature_name": "recommend_with_exclusions",  # max exclusions of unknown ids
             "inputs": {"user_text": ["a"] * 100, "exclude_item_ids": [["x" * 7] * 1000] * 100}},
        ]
        for body in requests:
            response = http.post("/v1/models/tiny:predict", json=body)
            assert response.status_code == 200, response.text[:300]
        over = {"signature_name": "recommend_with_exclusions",
                "inputs": {"user_text": ["a"], "exclude_item_ids": [["x"] * 1001]}}
        assert http.post("/v1/models/tiny:predict", json=over).status_code == 400
        huge = http.post("/v1/models/tiny:predict", content=b'{"instances": ["' + b"a" * 2_000_000 + b'"]}')
        assert huge.status_code == 413
        grown = _peak_rss_mb(server.pid) - baseline
        assert http.post("/v1/models/tiny:predict", json={"instances": TEXTS}).status_code == 200
    print(f"peak RSS grew {grown:.0f} MB over {baseline:.0f} MB under hostile sizes")
    assert grown < 600
