"""The fast query encoder: quality and latency of a query tower with the first N of MiniLM's 6
transformer layers (``encoder.query_layers``), items embedded by all 6.

Quality (``--part quality``): for N in ``--layers``, the default two-tower (text query tower,
frozen encoder) trained and evaluated by ``tfrecs_llm.evaluate`` (leave-last-out, full catalog)
on the bundled sample and on MovieLens 100K (``train.max_events_per_user`` 20: the text tower
embeds one user text per training event); paired bootstrap intervals of each N against N = 6
on the same users. (The sequential query tower, ``model.query_history=sequence``, reads only
free text with BERT, which MovieLens lacks: there N changes latency, not quality.)

Latency (``--part latency``): one query of exactly 32 tokens through a SavedModel assembled as
``export_tf_serving`` does (tokenize + encode + ScaNN top-50 of ``--items`` synthetic items +
re-ranking stage -> top 10), for each N with BERT compiled by XLA (``encoder.jit_compile``) and
without, against the naive keras-hub path with all 6 layers (``benchmarks.query_latency``), all
called in turn in one process. Writes benchmarks/results/query_layers.json and .png.

    python -m benchmarks.query_layers [--part quality latency] [--layers 1 2 3 4 5 6] [--items 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import tfrecs_llm  # noqa: F401  (Keras 2 for tf.keras before TensorFlow loads)
from benchmarks.query_latency import (
    BATCH, EMBEDDING_DIM, K, embed_queries, exact_length_texts, interleaved, naive_paths, synthetic_items,
)

RESULTS = Path(__file__).parent / "results"
DATASETS = {"sample": {}, "movielens100k": {"train.max_events_per_user": 20}}


def quality(layers: list[int], seed: int) -> dict:
    from tfrecs_llm.config import Config
    from tfrecs_llm.data.sample import load_sample
    from tfrecs_llm.metrics.bootstrap import bootstrap_intervals

    results: dict = {}
    for dataset, overrides in DATASETS.items():
        if dataset == "sample":
            items, events = load_sample()
        else:
            from benchmarks.datasets.movielens100k import fetch_movielens_100k
            from tfrecs_llm.data.loaders import load_movielens_100k

            items, events = load_movielens_100k(fetch_movielens_100k())
        per_query, rows = {}, {}
        for n in layers:
            config = Config().with_overrides({**overrides, "encoder.query_layers": n, "train.seed": seed})
            started = time.perf_counter()
            report = tfrecs_llm.evaluate(config, items, events, baselines=[], verbose=False)
            seconds = time.perf_counter() - started
            per_query[n] = report.per_query("model")
            rows[n] = {"recall@10": float(per_query[n]["recall@10"].mean()), "ndcg@10": float(per_query[n]["ndcg@10"].mean()),
                       "recall@100": float(per_query[n]["recall@100"].mean()), "train_and_evaluate_s": round(seconds, 1)}
            print(f"{dataset} N={n}: {json.dumps(rows[n])}", flush=True)
        full = max(layers)
        for n in layers:
            delta = {m: per_query[n][m] - per_query[full][m] for m in ("recall@10", "ndcg@10")}
            intervals = bootstrap_intervals(delta, 1000, 0.95, 0)
            rows[n][f"minus_{full}_layers"] = {m: {"mean": float(delta[m].mean()), "interval": list(intervals[m])}
                                               for m in delta}
            rows[n]["recall@10_relative_to_full"] = round(rows[n]["recall@10"] / rows[full]["recall@10"], 4)
        results[dataset] = {"overrides": overrides, "queries": int(len(per_query[full]["recall@10"])), "by_layers": rows}
    return results


def latency(layers: list[int], items: int, calls: int) -> dict:
    import tensorflow as tf
    import tf_keras

    from tfrecs_llm.config import EncoderConfig, IndexConfig, ModelConfig, RankingConfig
    from tfrecs_llm.export.signatures import RecommendModule
    from tfrecs_llm.export.tf_serving import SAVE_OPTIONS
    from tfrecs_llm.index import build_index
    from tfrecs_llm.ranking.stage import RankingStage
    from tfrecs_llm.text.presets import load_encoder, resolve_preset
    from tfrecs_llm.text.shallow import query_encoder
    from tfrecs_llm.towers import ItemTower, QueryTower

    import scann  # noqa: F401  (registers the ScaNN ops for loading)
    import tensorflow_text  # noqa: F401

    config = EncoderConfig()
    full = load_encoder(config)
    tf_keras.utils.set_random_seed(0)
    towers = {}
    for n in layers:
        tower = QueryTower(query_encoder(full, EncoderConfig(query_layers=n)), EMBEDDING_DIM)
        tower({"user_text": tf.constant(["warm up"])})
        towers[n] = tower
    reference = towers[max(layers)]
    for tower in towers.values():  # one projection for all: the same index serves every N
        tower.projection.set_weights(reference.projection.get_weights())
    texts = exact_length_texts(full.tokenizer, 4 * BATCH)
    centres = embed_queries(reference, exact_length_texts(full.tokenizer, max(items // 500, 1), seed=2))
    ids, embeddings = synthetic_items(items, centres=centres)
    tuning = embed_queries(reference, exact_length_texts(full.tokenizer, 512, seed=1))
    num_candidates = RankingConfig().num_candidates
    started = time.perf_counter()
    index, choice = build_index(ids, embeddings, IndexConfig(kind="scann"), k=max(K, num_candidates), query_embeddings=tuning)
    build_s = round(time.perf_counter() - started, 1)
    print(f"built ScaNN over {items} items in {build_s} s", flush=True)
    titles = [f"synthetic item {i}" for i in range(len(ids))]
    stage = RankingStage(index, None, ids, embeddings, titles, titles, num_candidates)
    item_tower = ItemTower(["synthetic"], ModelConfig(embedding_dim=EMBEDDING_DIM))
    folder = Path(tempfile.mkdtemp(prefix="query_layers_"))
    calls_by_name = {}
    for n in layers:
        for jit in (True, False):
            name = f"ours_{n}_layers_{'xla' if jit else 'plain'}"
            module = RecommendModule(towers[n], item_tower, stage, K, embeds_items=False, jit_compile=jit)
            tf.saved_model.save(module, str(folder / name), signatures=module.signatures(), options=SAVE_OPTIONS)
            function = tf.saved_model.load(str(folder / name)).signatures["serving_default"]
            calls_by_name[name] = (lambda f: lambda t: f(user_text=t)["item_ids"].numpy())(function)
            print(f"exported {name}", flush=True)
    naive = naive_paths(resolve_preset(config.preset), reference.projection, index, embeddings)
    calls_by_name["naive_6_layers_scann"] = naive["naive_scann"]
    singles = [tf.constant([t]) for t in texts]
    for call in calls_by_name.values():
        call(singles[0])
    interleaved(calls_by_name, singles, 5, seed=1)
    seconds = interleaved(calls_by_name, singles, calls)
    paths = {name: {"p50_ms": round(float(np.median(s)) * 1000, 2), "p99_ms": round(float(np.percentile(s, 99)) * 1000, 2)}
             for name, s in seconds.items()}
    naive_s = seconds["naive_6_layers_scann"]
    for name in paths:
        paths[name]["speedup_vs_naive_p50"] = round(float(np.median(naive_s)) / float(np.median(seconds[name])), 2)
        paths[name]["paired_median_speedup_vs_naive"] = round(float(np.median(naive_s / seconds[name])), 2)
    return {"items": items, "calls": calls, "index": {"build_s": build_s, **(choice.scann.parameters if choice.scann else {})},
            "paths": paths}


def targets(result: dict) -> dict:
    """Issue targets per N: export p50 <= 6 ms, >= 2.7x the naive path, MovieLens Recall@10
    within 3% of all layers; with the distance where one is missed."""
    paths = result.get("latency", {}).get("paths", {})
    rows = {int(n): row for n, row in result.get("quality", {}).get("movielens100k", {}).get("by_layers", {}).items()}
    out = {}
    for n in sorted(rows) or sorted({int(name.split("_")[1]) for name in paths if name.startswith("ours_")}):
        fastest = min((v for name, v in paths.items() if name.startswith(f"ours_{n}_layers")), key=lambda v: v["p50_ms"],
                      default=None)
        entry: dict = {}
        if fastest is not None:
            entry["p50_ms"] = fastest["p50_ms"]
            entry["p50_at_most_6_ms"] = fastest["p50_ms"] <= 6.0
            entry["speedup_vs_naive"] = fastest["paired_median_speedup_vs_naive"]
            entry["speedup_at_least_2.7x"] = fastest["paired_median_speedup_vs_naive"] >= 2.7
        if n in rows:
            entry["movielens_recall@10_relative"] = rows[n]["recall@10_relative_to_full"]
            entry["movielens_within_3_percent"] = rows[n]["recall@10_relative_to_full"] >= 0.97
        out[str(n)] = entry
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for dataset, data in result.get("quality", {}).items():
        rows = {int(n): row for n, row in data["by_layers"].items()}  # JSON keys are strings
        layers = sorted(rows)
        axes[0].plot(layers, [rows[n]["recall@10"] for n in layers], marker="o", label=dataset)
    axes[0].set(xlabel="query encoder layers (of 6)", ylabel="Recall@10", title="quality")
    axes[0].legend()
    paths = result.get("latency", {}).get("paths", {})
    for mode in ("xla", "plain"):
        points = sorted((int(name.split("_")[1]), v["p50_ms"]) for name, v in paths.items() if name.endswith(mode))
        if points:
            axes[1].plot(*zip(*points), marker="o", label=f"ours, {mode}")
    if "naive_6_layers_scann" in paths:
        axes[1].axhline(paths["naive_6_layers_scann"]["p50_ms"], color="grey", linestyle="--", label="naive keras-hub, 6 layers")
    axes[1].set(xlabel="query encoder layers (of 6)", ylabel="p50 ms, 1 query of 32 tokens", title="latency")
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", nargs="+", choices=["quality", "latency"], default=["quality", "latency"])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=RESULTS / "query_layers.json")
    args = parser.parse_args()
    result = json.loads(args.output.read_text()) if args.output.is_file() else {}  # keeps the other part
    if "quality" in args.part:
        load = round(os.getloadavg()[0], 2)
        result["quality"] = quality(args.layers, args.seed)
        result["quality_load_average_1min"] = {"start": load, "end": round(os.getloadavg()[0], 2)}
    if "latency" in args.part:
        load = round(os.getloadavg()[0], 2)
        result["latency"] = latency(args.layers, args.items, args.calls)
        result["latency_load_average_1min"] = {"start": load, "end": round(os.getloadavg()[0], 2)}
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["targets"] = targets(result)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.output.with_suffix(".png"))
    print(json.dumps(result, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
