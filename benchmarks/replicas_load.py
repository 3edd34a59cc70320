"""Scale-out load test: one vs two REST fronts in remote model mode over one model server and one
PostgreSQL event log, all real servers on loopback, each in its own process.

The model server is `tfrecs-llm serve` with its gRPC port (any TF-Serving-compatible server would
do; stock ``tensorflow/serving`` needs Docker, which this machine cannot pull). Each front runs
``serve(..., model_server="grpc://...", event_log_path="postgresql://...")``. Clients send the
load test's mix (predict, per-user recommend, feedback with a ``client_event_id``), spread over
the fronts, and every third feedback request is sent again to the other front (a client retrying).
Afterwards every acknowledged event must be in PostgreSQL exactly once.
Writes benchmarks/results/replicas_load.json.

    python -m benchmarks.replicas_load [--seconds 20] [--clients 16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import random
import time
from pathlib import Path

import httpx
import pandas as pd

from benchmarks.load_test import (
    DEFAULT_MODEL_BASE_PATH, HOST, MIX, RESULTS, Sample, Workload, _free_port, _wait_until_ready,
    build_sample_export, check_rows, run_level,
)
from tests.postgres_server import fresh_database, running_postgres
from tfrecs_llm.export.layout import versions


def _model_server(base: str, name: str, rest_port: int, grpc_port: int, events: str) -> None:
    from tfrecs_llm.serving import serve

    serve(base, name, host=HOST, rest_port=rest_port, grpc_port=grpc_port, event_log_path=events, log_level="warning")


def _front(base: str, name: str, rest_port: int, model_server: str, database: str) -> None:
    from tfrecs_llm.serving import serve

    serve(base, name, host=HOST, rest_port=rest_port, model_server=model_server, event_log_path=database,
          log_level="warning")


class RetryingWorkload(Workload):
    """The load test's mix; feedback carries a client event id and every third one is sent again
    to the next front, which must answer with the same event id."""

    def __init__(self, *args, fronts: list[str]) -> None:
        super().__init__(*args)
        self.fronts = fronts
        self.keys = itertools.count()
        self.retries = 0
        self.retry_mismatches = 0

    def request(self, http: httpx.Client, rng: random.Random) -> Sample:
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind != "feedback":
            return super()._send(http, rng, kind)
        key = next(self.keys)
        event = {"user_id": f"load-user-{rng.randrange(200)}", "item_id": rng.choice(self.item_ids),
                 "type": rng.choice(["view", "click", "like"]), "client_event_id": f"k{key}"}
        started = time.perf_counter()
        try:
            response = http.post("/v1/feedback", json=event)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                return Sample(kind, elapsed, f"HTTP {response.status_code}: {response.text[:200]}")
            [event_id] = response.json()["event_ids"]
            with self._lock:
                self.acknowledged[event_id] = (event["user_id"], event["item_id"], event["type"])
            if key % 3 == 0:
                other = self.fronts[(self.fronts.index(str(http.base_url).rstrip("/")) + 1) % len(self.fronts)]
                again = httpx.post(f"{other}/v1/feedback", json=event, timeout=60)
                with self._lock:
                    self.retries += 1
                    self.retry_mismatches += again.status_code != 200 or again.json()["event_ids"] != [event_id]
            return Sample(kind, elapsed, None)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            return Sample(kind, time.perf_counter() - started, f"{type(error).__name__}: {error}")


def _start(target, args: tuple) -> multiprocessing.Process:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    return process


def _stop(processes: list[multiprocessing.Process]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(60)
        if process.is_alive():
            process.kill()
            process.join()


def measure(base: Path, fronts: int, clients: int, seconds: float, server_url: str, grpc: str, number: int) -> dict:
    """``fronts`` fronts over the running model server and a new database; the level and the check."""
    import psycopg

    database = fresh_database(server_url, f"replicas_{number}")
    ports = [_free_port() for _ in range(fronts)]
    processes = [_start(_front, (str(base), base.name, port, f"grpc://{grpc}", database)) for port in ports]
    urls = [f"http://{HOST}:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes):
            _wait_until_ready(url, base.name, process, timeout=600)
        extra = base / str(versions(base)[-1]) / "assets.extra"
        catalog = pd.read_csv(extra / "items.csv", dtype=str, keep_default_na=False)
        workload = RetryingWorkload(base.name, catalog["item_id"].tolist(), catalog["title"].tolist(), fronts=urls)
        run_level(urls, workload, 2, min(5.0, seconds), seed=0)  # warm-up, not reported
        workload.acknowledged.clear()
        with psycopg.connect(database) as connection:
            connection.execute("DELETE FROM events")
        print(f"{fronts} front(s), {clients} clients for {seconds:g} s ...", flush=True)
        level = run_level(urls, workload, clients, seconds, seed=fronts)
    finally:
        _stop(processes)
    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT event_id, user_id, item_id, type FROM events").fetchall()
        duplicated = connection.execute(
            "SELECT count(*) FROM (SELECT client_event_id FROM events GROUP BY client_event_id HAVING count(*) > 1) d"
        ).fetchone()[0]
    check = check_rows(rows, workload.acknowledged)
    check.update(retries_sent=workload.retries, retries_answered_differently=workload.retry_mismatches,
                 client_ids_stored_twice=int(duplicated))
    check["ok"] = check["ok"] and not check["stored_but_unacknowledged"] and not duplicated and not workload.retry_mismatches
    return {"fronts": fronts, **level, "event_check": check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each run (default 20)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--output", type=Path, default=RESULTS / "replicas_load.json")
    args = parser.parse_args()
    base = DEFAULT_MODEL_BASE_PATH
    if not versions(base):
        build_sample_export(base)
    load_at_start = round(os.getloadavg()[0], 2)
    rest_port, grpc_port = _free_port(), _free_port()
    events = Path(os.environ.get("TMPDIR", "/tmp")) / f"replicas_model_server_{os.getpid()}.sqlite"
    model_server = _start(_model_server, (str(base), base.name, rest_port, grpc_port, str(events)))
    runs = []
    try:
        _wait_until_ready(f"http://{HOST}:{rest_port}", base.name, model_server, timeout=600)
        with running_postgres() as server_url:
            for number, fronts in enumerate((1, 2)):
                runs.append(measure(base, fronts, args.clients, args.seconds, server_url, f"{HOST}:{grpc_port}", number))
    finally:
        _stop([model_server])
        events.unlink(missing_ok=True)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_at_start": load_at_start,
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "setup": {"model_server": "tfrecs-llm serve (gRPC), one process", "event_log": "PostgreSQL 15, fsync on",
                  "fronts": "tfrecs-llm serve --model-server grpc://... --events-db postgresql://..., one process each",
                  "model_base_path": str(base),
                  "note": "clients, fronts, model server and database share 2 cores; latencies are client-side"},
        "mix": MIX,
        "clients": args.clients,
        "seconds": args.seconds,
        "runs": runs,
        "two_fronts_vs_one_throughput": round(runs[1]["throughput_rps"] / runs[0]["throughput_rps"], 3),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for run in runs:
        check = run["event_check"]
        print(f"{run['fronts']} front(s): {run['throughput_rps']:.1f} req/s, p50 {run['p50_ms']} ms, "
              f"p99 {run['p99_ms']} ms, {run['errors']} errors; events {check['acknowledged']} acknowledged, "
              f"{check['rows_in_log']} stored, {check['missing']} missing, {check['client_ids_stored_twice']} twice, "
              f"{check['retries_sent']} retries ({check['retries_answered_differently']} answered differently)")
    print(f"wrote {args.output}")
    if not all(run["event_check"]["ok"] for run in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
