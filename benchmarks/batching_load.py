"""Request batching under concurrency: `tfrecs-llm serve` with batching off and on, one run.

The server runs in a child process on 127.0.0.1; the clients (threads of this process) send
single-text predict requests back to back at 1, 4, 16 and 64 concurrent clients, ``--seconds``
each, first with batching off, then on (the export's recommended batching parameters, or
``--max-batch-size`` / ``--batch-timeout-micros``) with the local server's scheduling (a batch
starts as soon as a batch thread is free, ``dispatch_when_idle``), then on with TF Serving's
rule (a batch closes when full or at its timeout). The same run measures the limit: one client
sending batches of 64 texts (texts/s), and of 16 texts (the most 16 single-text clients can
ever merge into one batch). Writes benchmarks/results/batching_load.json and .png.

    python -m benchmarks.batching_load [--seconds 20] [--model-base-path saved_models/demo]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from benchmarks.load_test import (DEFAULT_MODEL_BASE_PATH, HOST, RESULTS, _free_port, _wait_until_ready,
                                  build_sample_export, run_clients)
from tfrecs_llm.export.batching_config import FILE_NAME, BatchingParameters
from tfrecs_llm.export.layout import versions

LEVELS = (1, 4, 16, 64)


def _serve(base: str, name: str, port: int, events: str, batching: str | None, idle: bool) -> None:
    import dataclasses

    from tfrecs_llm.serving import serve

    parameters = BatchingParameters.from_text(batching) if batching else None
    if parameters is not None:
        parameters = dataclasses.replace(parameters, dispatch_when_idle=idle)
    serve(base, name, host=HOST, rest_port=port, event_log_path=events, log_level="warning",
          query_cache_size=0, batching=parameters)


def _load(url: str, name: str, titles: list[str], clients: int, seconds: float, texts_per_request: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        mine, failed = [], []
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                # Distinct texts of different lengths: no cache, padding within batches.
                texts = [" ; ".join(rng.sample(titles, rng.randint(1, 6))) for _ in range(texts_per_request)]
                started = time.perf_counter()
                response = http.post(f"/v1/models/{name}:predict", json={"instances": texts})
                mine.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failed.append(f"HTTP {response.status_code}: {response.text[:120]}")
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    elapsed = run_clients(client, clients)
    p50, p99 = np.percentile(np.asarray(latencies) * 1000, [50, 99]) if latencies else (None, None)
    return {"clients": clients, "texts_per_request": texts_per_request, "requests": len(latencies),
            "requests_per_second": round(len(latencies) / elapsed, 2),
            "texts_per_second": round(len(latencies) * texts_per_request / elapsed, 2),
            "p50_ms": round(float(p50), 2) if p50 is not None else None,
            "p99_ms": round(float(p99), 2) if p99 is not None else None,
            "errors": len(errors), "error_samples": sorted(set(errors))[:3]}


def run_mode(base: Path, titles: list[str], batching: BatchingParameters | None, seconds: float) -> dict:
    port = _free_port()
    url = f"http://{HOST}:{port}"
    events = Path(tempfile.mkdtemp(prefix="batching_load_")) / "events.sqlite"
    server = multiprocessing.get_context("spawn").Process(
        target=_serve,
        args=(str(base), base.name, port, str(events), batching.to_text() if batching else None,
              batching.dispatch_when_idle if batching else False),
        daemon=True,
    )
    server.start()
    try:
        _wait_until_ready(url, base.name, server, timeout=600)
        _load(url, base.name, titles, 4, min(5.0, seconds), 1)  # warm-up
        mode = "off" if batching is None else ("on, dispatch when idle" if batching.dispatch_when_idle else "on, timeout")
        result = {"batching": batching.to_text() if batching else None, "levels": [],
                  "dispatch_when_idle": batching.dispatch_when_idle if batching else None}
        for clients in LEVELS:
            print(f"batching {mode}: {clients} client(s) for {seconds:g} s", flush=True)
            result["levels"].append(_load(url, base.name, titles, clients, seconds, 1))
        print(f"batching {mode}: batches of 64 texts, 1 client", flush=True)
        result["batch_64"] = _load(url, base.name, titles, 1, seconds, 64)
        # 16 single-text clients never form a batch over 16 texts: this is their ceiling.
        print(f"batching {mode}: batches of 16 texts, 1 client", flush=True)
        result["batch_16"] = _load(url, base.name, titles, 1, seconds, 16)
        return result
    finally:
        server.terminate()
        server.join(60)
        if server.is_alive():
            server.kill()


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for mode, label in (("off", "batching off"), ("on", "batching on (dispatch when idle)"),
                        ("on_timeout", "batching on (TF Serving's timeout rule)")):
        levels = result[mode]["levels"]
        clients = [level["clients"] for level in levels]
        axes[0].plot(clients, [level["requests_per_second"] for level in levels], marker="o", label=label)
        axes[1].plot(clients, [level["p50_ms"] for level in levels], marker="o", label=f"{label} p50")
        axes[1].plot(clients, [level["p99_ms"] for level in levels], marker="x", linestyle="--", label=f"{label} p99")
    limit = result["on"]["batch_64"]["texts_per_second"]
    axes[0].axhline(limit, color="gray", linestyle=":", label="batches of 64 texts (texts/s)")
    for axis, title in zip(axes, ("single-text requests / s", "latency, ms")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[1].set_yscale("log")
    fig.suptitle(f"tfrecs-llm serve on {os.cpu_count()} CPU cores (load avg {result['machine']['load_average_1min_at_end']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each level (default 20)")
    parser.add_argument("--model-base-path", type=Path, help="a folder of versions (default: the sample export)")
    parser.add_argument("--max-batch-size", type=int, help="override the export's recommended max_batch_size")
    parser.add_argument("--batch-timeout-micros", type=int, help="override the recommended batch_timeout_micros")
    parser.add_argument("--output", type=Path, default=RESULTS / "batching_load.json")
    args = parser.parse_args()
    base = args.model_base_path or DEFAULT_MODEL_BASE_PATH
    if not versions(base):
        build_sample_export(base)
    extra = base / str(versions(base)[-1]) / "assets.extra"
    titles = pd.read_csv(extra / "items.csv", dtype=str, keep_default_na=False)["title"].tolist()
    recommended = BatchingParameters.from_file(extra / FILE_NAME) if (extra / FILE_NAME).is_file() else BatchingParameters()
    overrides = {k: v for k, v in (("max_batch_size", args.max_batch_size),
                                   ("batch_timeout_micros", args.batch_timeout_micros)) if v is not None}
    batching = BatchingParameters(**{**recommended.__dict__, **overrides, "allowed_batch_sizes": ()}) \
        if overrides else recommended
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model_base_path": str(base),
              "seconds_per_level": args.seconds}
    load_before = os.getloadavg()[0]
    result["off"] = run_mode(base, titles, None, args.seconds)
    result["on"] = run_mode(base, titles, batching, args.seconds)
    result["on_timeout"] = run_mode(base, titles, dataclasses.replace(batching, dispatch_when_idle=False), args.seconds)
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                         "load_average_1min_at_start": round(load_before, 2),
                         "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    on = {level["clients"]: level for level in result["on"]["levels"]}
    off = {level["clients"]: level for level in result["off"]["levels"]}
    limit = result["on"]["batch_64"]["texts_per_second"]
    result["targets"] = {
        "16_clients_vs_batch_64": round(on[16]["requests_per_second"] / limit, 3),
        "16_clients_vs_batch_16": round(on[16]["requests_per_second"] / result["on"]["batch_16"]["texts_per_second"], 3),
        "batch_16_vs_batch_64": round(result["on"]["batch_16"]["texts_per_second"] / limit, 3),
        "16_clients_on_vs_off": round(on[16]["requests_per_second"] / off[16]["requests_per_second"], 3),
        "16_clients_p99_ms": on[16]["p99_ms"],
        "1_client_p50_on_vs_off": round(on[1]["p50_ms"] / off[1]["p50_ms"], 3),
    }
    timeout_rule = {level["clients"]: level for level in result["on_timeout"]["levels"]}
    result["timeout_rule"] = {
        "16_clients_vs_batch_64": round(timeout_rule[16]["requests_per_second"] / limit, 3),
        "16_clients_on_vs_off": round(timeout_rule[16]["requests_per_second"] / off[16]["requests_per_second"], 3),
        "16_clients_p99_ms": timeout_rule[16]["p99_ms"],
        "1_client_p50_on_vs_off": round(timeout_rule[1]["p50_ms"] / off[1]["p50_ms"], 3),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.output.with_suffix(".png"))
    print(json.dumps({"dispatch_when_idle": result["targets"], "timeout_rule": result["timeout_rule"]}, indent=2))
    for mode in ("off", "on", "on_timeout"):
        for level in result[mode]["levels"]:
            print(mode, level["clients"], level["requests_per_second"], level["p50_ms"], level["p99_ms"], level["errors"])
    print("batch 64 texts/s", limit, "batch 16 texts/s", result["on"]["batch_16"]["texts_per_second"])
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
