"""Loopback load test of `tfrecs-llm serve`: mixed predict, per-user recommend and feedback requests.

Starts the local server (`tfrecs_llm.serving.serve`) in a child process on 127.0.0.1 with a fresh
SQLite event log, drives it with 1, 4 and 16 concurrent clients for ``--seconds`` each, and
reports throughput, p50/p99 latency (client side, per request kind too) and errors. Afterwards
every feedback event the server acknowledged must be in the SQLite log, exactly as sent.
Writes benchmarks/results/load_test.json and prints a table.

    python -m benchmarks.load_test [--seconds 60] [--model-base-path saved_models/demo]

Without ``--model-base-path`` it serves build/load_test/saved_models/sample, exporting it first if
missing (the bundled MiniLM, frozen, trained briefly on the bundled sample; exact index). Only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import socket
import sqlite3
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from tfrecs_llm.export.layout import versions

HOST = "127.0.0.1"
REPO = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
DEFAULT_MODEL_BASE_PATH = REPO / "build" / "load_test" / "saved_models" / "sample"
MIX = {"predict": 0.5, "user_recommend": 0.25, "feedback": 0.25}
"""Share of each request kind: TF Serving predict, POST /v1/users/{id}:recommend, POST /v1/feedback."""
NUM_USERS = 200


@dataclass
class Sample:
    """One request: its kind, client-side latency, and the error (None when answered 200)."""

    kind: str
    seconds: float
    error: str | None


def build_sample_export(model_base_path: Path) -> None:
    """Trains a quick model on the bundled sample (frozen MiniLM) and exports version 1 (exact)."""
    from tfrecs_llm.recommender import Recommender
    from tfrecs_llm.config import Config
    from tfrecs_llm.data.sample import load_sample

    items, events = load_sample()
    config = Config().with_overrides(
        {"train.epochs": 2, "train.max_events_per_user": 2, "encoder.sequence_length": 32}
    )
    print(f"building a sample export in {model_base_path} (one-time) ...", flush=True)
    recommender = Recommender.train(items, events, config, verbose=False)
    recommender.export(model_base_path.parent, model_base_path.name, index_kind="brute_force", k=10)


def _serve(model_base_path: str, model_name: str, port: int, event_log_path: str) -> None:
    """The child process: the local server on HOST:port until terminated."""
    from tfrecs_llm.serving import serve

    serve(model_base_path, model_name, host=HOST, rest_port=port, event_log_path=event_log_path,
          log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(url: str, model_name: str, server: multiprocessing.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=5) as http:
        while time.monotonic() < deadline:
            if not server.is_alive():
                raise RuntimeError(f"the server exited with code {server.exitcode} before serving")
            try:
                statuses = http.get(f"/v1/models/{model_name}").json().get("model_version_status", [])
                if any(s["state"] == "AVAILABLE" for s in statuses):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not serve {model_name} within {timeout} s")


class Workload:
    """Random requests over the served catalog; remembers every acknowledged feedback event."""

    def __init__(self, model_name: str, item_ids: list[str], titles: list[str]) -> None:
        self.model_name = model_name
        self.item_ids = item_ids
        self.titles = titles
        self.acknowledged: dict[int, tuple[str, str, str]] = {}
        self._lock = threading.Lock()

    def request(self, http: httpx.Client, rng: random.Random) -> Sample:
        return self._send(http, rng, rng.choices(list(MIX), weights=list(MIX.values()))[0])

    def _send(self, http: httpx.Client, rng: random.Random, kind: str) -> Sample:
        user = f"load-user-{rng.randrange(NUM_USERS)}"
        event = {"user_id": user, "item_id": rng.choice(self.item_ids), "type": rng.choice(["view", "click", "like"])}
        started = time.perf_counter()
        try:
            if kind == "predict":
                text = " ; ".join(rng.sample(self.titles, 3))
                response = http.post(f"/v1/models/{self.model_name}:predict", json={"instances": [text]})
            elif kind == "user_recommend":
                response = http.post(f"/v1/users/{user}:recommend")
            else:
                response = http.post("/v1/feedback", json=event)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                return Sample(kind, elapsed, f"HTTP {response.status_code}: {response.text[:200]}")
            if kind == "feedback":
                [event_id] = response.json()["event_ids"]
                with self._lock:
                    self.acknowledged[event_id] = (event["user_id"], event["item_id"], event["type"])
            return Sample(kind, elapsed, None)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            return Sample(kind, time.perf_counter() - started, f"{type(error).__name__}: {error}")


def run_level(url: str | list[str], workload: Workload, concurrency: int, seconds: float, seed: int) -> dict:
    """``concurrency`` clients sending requests back to back for ``seconds``; returns the stats.
    With several ``url`` s, client i talks to ``url[i % len(url)]``."""
    urls = [url] if isinstance(url, str) else url
    samples: list[Sample] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine = []
        with httpx.Client(base_url=urls[index % len(urls)], timeout=60) as http:
            while time.monotonic() < deadline:
                mine.append(workload.request(http, rng))
        with lock:
            samples.extend(mine)

    return summarize(samples, concurrency, run_clients(client, concurrency))


def run_clients(client, count: int) -> float:
    """Runs ``client(i)`` for i in 0..count-1 on as many threads; returns the wall time in s."""
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def _percentiles(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_ms": None, "p99_ms": None}
    p50, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 99])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2)}


def summarize(samples: list[Sample], concurrency: int, elapsed: float) -> dict:
    """Throughput, latency percentiles and errors of one level, overall and per request kind."""
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    errors = [s.error for s in samples if s.error is not None]
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "requests": len(samples),
        "throughput_rps": round(len(samples) / elapsed, 2),
        **_percentiles([s.seconds for s in samples]),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "by_kind": {
            kind: {
                "requests": len(group),
                **_percentiles([s.seconds for s in group]),
                "errors": sum(s.error is not None for s in group),
            }
            for kind, group in sorted(by_kind.items())
        },
    }


def check_event_log(path: Path, acknowledged: dict[int, tuple[str, str, str]]) -> dict:
    """Compares the SQLite log with the acknowledged events (the log was empty at the start)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT event_id, user_id, item_id, type FROM events").fetchall()
    return check_rows(rows, acknowledged)


def check_rows(rows: list[tuple], acknowledged: dict[int, tuple[str, str, str]]) -> dict:
    """Stored ``(event_id, user_id, item_id, type)`` rows against the acknowledged events."""
    stored = {event_id: (user, item, kind) for event_id, user, item, kind in rows}
    missing = [i for i in acknowledged if i not in stored]
    mismatched = [i for i in acknowledged if i in stored and stored[i] != acknowledged[i]]
    return {
        "acknowledged": len(acknowledged),
        "rows_in_log": len(stored),
        "missing": len(missing),
        "mismatched": len(mismatched),
        "stored_but_unacknowledged": len(set(stored) - set(acknowledged)),
        "ok": not missing and not mismatched,
    }


def print_table(levels: list[dict], check: dict) -> None:
    kinds = list(MIX)
    header = f"{'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    header += "".join(f" {kind + ' p50/p99':>26}" for kind in kinds)
    print(header)
    for level in levels:
        line = (f"{level['concurrency']:>7} {level['requests']:>8} {level['throughput_rps']:>8.1f} "
                f"{level['p50_ms'] or 0:>8.1f} {level['p99_ms'] or 0:>8.1f} {level['errors']:>6}")
        for kind in kinds:
            stats = level["by_kind"].get(kind, {})
            line += f" {stats.get('p50_ms') or 0:>12.1f} / {stats.get('p99_ms') or 0:>11.1f}"
        print(line)
    verdict = "OK" if check["ok"] else "FAILED"
    print(f"feedback log check: {verdict}: {check['acknowledged']} acknowledged events, "
          f"{check['rows_in_log']} rows in the log, {check['missing']} missing, {check['mismatched']} mismatched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of each concurrency level (default 60)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16],
                        help="concurrent clients per level (default: 1 4 16)")
    parser.add_argument("--model-base-path", type=Path,
                        help="a folder of version folders to serve (default: a sample export, built if missing)")
    parser.add_argument("--output", type=Path, default=RESULTS / "load_test.json", help="where to write the JSON")
    args = parser.parse_args()
    base = args.model_base_path or DEFAULT_MODEL_BASE_PATH
    if not versions(base):
        if args.model_base_path is not None:
            parser.error(f"{base} holds no version folders")
        build_sample_export(base)
    version = versions(base)[-1]
    extra = base / str(version) / "assets.extra"
    catalog = pd.read_csv(extra / "items.csv", dtype=str, keep_default_na=False)
    card = json.loads((extra / "model_card.json").read_text())
    workload = Workload(base.name, catalog["item_id"].tolist(), catalog["title"].tolist())

    port = _free_port()
    url = f"http://{HOST}:{port}"
    scratch = Path(tempfile.mkdtemp(prefix="load_test_"))
    event_log = scratch / "events.sqlite"
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(str(base), base.name, port, str(event_log)), daemon=True
    )
    server.start()
    try:
        _wait_until_ready(url, base.name, server, timeout=600)
        run_level(url, workload, 2, min(5.0, args.seconds), seed=0)  # warm-up, not reported
        levels = []
        for concurrency in args.concurrency:
            print(f"{concurrency} concurrent client(s) for {args.seconds:g} s ...", flush=True)
            levels.append(run_level(url, workload, concurrency, args.seconds, seed=concurrency))
    finally:
        server.terminate()
        server.join(60)
        if server.is_alive():
            server.kill()
            server.join()
    check = check_event_log(event_log, workload.acknowledged)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "server": {
            "url": url, "model_base_path": str(base), "version": version, "index": card.get("index", {}),
            "num_items": card.get("num_items"), "encoder": card.get("config", {}).get("encoder", {}),
            "note": "client and server share the machine; latencies are client-side, keep-alive HTTP/1.1",
        },
        "mix": MIX,
        "seconds_per_level": args.seconds,
        "levels": levels,
        "feedback_log_check": check,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(levels, check)
    print(f"wrote {args.output}")
    if not check["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
