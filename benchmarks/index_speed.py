"""Index speed: exact (TFRS BruteForce) against auto-tuned ScaNN on synthetic clustered embeddings.

Items are unit vectors around Gaussian cluster centres (cosine ~0.8 to their centre, 500 items a
cluster, 1000-4000 clusters); the queries are fresh draws from the same mixture. Both indexes
are built by ``tfrecs_llm.index.build_index``, as the export builds them (ScaNN tuned on its
default perturbed-item queries, not on the benchmark's), and called through
``tf.function`` like a SavedModel signature. Per catalog size it reports 1-query latency p50 /
p99 (after warm-up), batch-64 queries/s, ScaNN's recall@10 against the exact results, index build
and tuning time, and the speed ratios. Writes benchmarks/results/index_speed.json and .png.

    python -m benchmarks.index_speed [--sizes 100000 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from tfrecs_llm.config import IndexConfig
from tfrecs_llm.index import build_index
from tfrecs_llm.index.tuning import recall_at_k

RESULTS = Path(__file__).parent / "results"
K = 10
DIM = 64
BATCH = 64
WARMUP = 20
TURN = 20
CENTRE_COSINE_NOISE = 0.75
"""Per-vector noise norm around a unit centre: cosine ~1/sqrt(1 + 0.75^2) = 0.8 to the centre."""


def clustered_unit_vectors(centres: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """``[num, dim]`` unit vectors: a random centre each, plus isotropic Gaussian noise."""
    vectors = centres[rng.integers(0, len(centres), num)]
    vectors += CENTRE_COSINE_NOISE / np.sqrt(centres.shape[1]) * rng.standard_normal(vectors.shape, np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def searcher(index: tf.keras.layers.Layer):
    """The index behind a ``tf.function`` with a fixed signature, as in the exported SavedModel."""
    return tf.function(lambda queries: index(queries, k=K), input_signature=[tf.TensorSpec([None, DIM], tf.float32)])


def single_query_latencies(searches: dict, queries: np.ndarray) -> tuple[dict, dict]:
    """Milliseconds per 1-query call ``[num_queries - WARMUP]`` and ids found, per index.

    The first ``WARMUP`` queries run untimed (tracing, caches). The indexes take turns every
    ``TURN`` queries, so on a shared machine both see the same background load, while each
    turn is long enough for an index to run with its own data in cache (exact search streams
    the whole catalog through it, which would otherwise slow the next ScaNN query).
    """
    for query in queries[:WARMUP]:
        for search in searches.values():
            search(query[np.newaxis])
    latencies = {name: [] for name in searches}
    found = {name: [] for name in searches}
    for start in range(WARMUP, len(queries), TURN):
        for name, search in searches.items():
            for query in queries[start : start + TURN]:
                started = time.perf_counter()
                _, ids = search(query[np.newaxis])
                latencies[name].append(time.perf_counter() - started)
                found[name].append(ids.numpy()[0])
    return {n: np.array(t) * 1e3 for n, t in latencies.items()}, {n: np.array(f) for n, f in found.items()}


def batch_queries_per_second(searches: dict, batches: np.ndarray) -> dict[str, float]:
    """Queries/s at ``BATCH`` queries a call, per index: median over ``batches: [num_batches, BATCH, DIM]``."""
    seconds = {name: [] for name in searches}
    for search in searches.values():
        search(batches[0])
    for batch in batches:
        for name, search in searches.items():
            started = time.perf_counter()
            search(batch)
            seconds[name].append(time.perf_counter() - started)
    return {name: BATCH / float(np.median(s)) for name, s in seconds.items()}


def benchmark_size(num_items: int, num_queries: int, num_batches: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    num_clusters = int(np.clip(num_items // 500, 1000, 4000))
    centres = rng.standard_normal((num_clusters, DIM), np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    items = clustered_unit_vectors(centres, num_items, rng)
    queries = clustered_unit_vectors(centres, WARMUP + num_queries, rng)
    batches = clustered_unit_vectors(centres, num_batches * BATCH, rng).reshape(num_batches, BATCH, DIM)
    ids = np.array([f"item{i}" for i in range(num_items)])
    print(f"== {num_items} items x {DIM} dims, {num_clusters} clusters", flush=True)

    started = time.perf_counter()
    exact, _ = build_index(ids, items, IndexConfig(kind="brute_force", k=K))
    exact_build = time.perf_counter() - started
    started = time.perf_counter()
    scann, choice = build_index(ids, items, IndexConfig(kind="scann", k=K))
    scann_total = time.perf_counter() - started
    settings = choice.scann

    searches = {"exact": searcher(exact), "scann": searcher(scann)}
    latencies, found = single_query_latencies(searches, queries)
    queries_per_second = batch_queries_per_second(searches, batches)
    figures = {
        name: {
            "latency_ms_p50": float(np.percentile(latencies[name], 50)),
            "latency_ms_p99": float(np.percentile(latencies[name], 99)),
            "batch64_queries_per_s": queries_per_second[name],
        }
        for name in searches
    }
    exact_figures, scann_figures = figures["exact"], figures["scann"]
    scann_figures["recall@10_vs_exact"] = recall_at_k(found["scann"], found["exact"])
    print(f"exact: {exact_figures}\nscann: {scann_figures}", flush=True)
    return {
        "num_items": num_items,
        "num_clusters": num_clusters,
        "num_queries": num_queries,
        "exact": {**exact_figures, "build_s": exact_build},
        "scann": {
            **scann_figures,
            # build_index's time minus tuning: ScaNN training (done once, shared with tuning).
            "build_s": scann_total - settings.tuning_seconds,
            "tuning_s": settings.tuning_seconds,
            "parameters": settings.parameters,
            "tuning_recall@10": settings.recall,
            "tuning_queries": f"{settings.num_queries} {settings.queries}",
            "settings_evaluated": len(settings.evaluated),
        },
        "speedup_1_query_p50": exact_figures["latency_ms_p50"] / scann_figures["latency_ms_p50"],
        # Per-query ratios of back-to-back calls: steadier than a ratio of p50s on a busy machine.
        "speedup_1_query_paired_median": float(np.median(latencies["exact"] / latencies["scann"])),
        "speedup_batch64": scann_figures["batch64_queries_per_s"] / exact_figures["batch64_queries_per_s"],
    }


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['num_items']:,}" for r in results]
    x = np.arange(len(results))
    figure, (latency_axis, batch_axis) = plt.subplots(1, 2, figsize=(10, 4.2))
    for offset, name, color in ((-0.2, "exact", "C3"), (0.2, "scann", "C0")):
        latency_axis.bar(x + offset, [r[name]["latency_ms_p50"] for r in results], 0.4, color=color, label=name,
                         yerr=[[0] * len(results), [r[name]["latency_ms_p99"] - r[name]["latency_ms_p50"] for r in results]])
        batch_axis.bar(x + offset, [r[name]["batch64_queries_per_s"] for r in results], 0.4, color=color, label=name)
    for i, r in enumerate(results):
        latency_axis.annotate(f"{r['speedup_1_query_p50']:.0f}x, recall {r['scann']['recall@10_vs_exact']:.3f}",
                              (i + 0.2, r["scann"]["latency_ms_p50"]), ha="center", va="bottom", fontsize=8,
                              xytext=(0, 3), textcoords="offset points")
    for axis, title in ((latency_axis, "1-query latency, ms (p50, bar to p99)"), (batch_axis, "batch-64 queries/s")):
        axis.set_yscale("log")
        axis.set_xticks(x, labels)
        axis.set_xlabel(f"items ({DIM} dims)")
        axis.set_title(title)
        axis.grid(alpha=0.3, axis="y")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="catalog sizes")
    parser.add_argument("--queries", type=int, default=200, help="timed 1-query calls per index (after 20 warm-up)")
    parser.add_argument("--batches", type=int, default=5, help="timed batches of 64 queries per index")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = [benchmark_size(n, args.queries, args.batches, args.seed) for n in args.sizes]
    report = {
        "k": K,
        "dim": DIM,
        "results": results,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1min_before_after": [load_before, os.getloadavg()[0]],
        },
        "tensorflow": tf.__version__,
        "seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "index_speed.json").write_text(json.dumps(report, indent=2))
    _plot(results, RESULTS / "index_speed.png")
    for r in results:
        print(
            f"{r['num_items']:>9,} items: exact {r['exact']['latency_ms_p50']:.2f} ms, ScaNN "
            f"{r['scann']['latency_ms_p50']:.3f} ms ({r['speedup_1_query_p50']:.0f}x, batch-64 "
            f"{r['speedup_batch64']:.0f}x), recall@10 {r['scann']['recall@10_vs_exact']:.3f}, build "
            f"{r['scann']['build_s']:.1f} s + tuning {r['scann']['tuning_s']:.1f} s"
        )
    print(f"wrote {RESULTS / 'index_speed.json'} and .png ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
