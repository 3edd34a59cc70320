"""How much of the MovieLens-100K comparison with SASRec is the training seed: several seeds of
the benchmark model and of SASRec, on the validation split and on the test split.

The benchmark (`benchmarks.quality_movielens100k`) trains every model once, with seed 42. A
neural model's figures move with its seed, and a single-seed tie (or win) says little when that
move is as large as the gap. Here the benchmark model (its validation-chosen settings) and
SASRec (its epochs chosen on its own validation split, as in `evaluate`) are trained with each
of ``--seeds`` on

- ``validation``: the train part minus each user's last train event, scored on those events;
- ``test``: the whole train part, scored on each user's held-out last event (the benchmark's
  protocol: full catalog, the user's train items excluded).

Reported per split: each seed's Recall@10 / NDCG@10 / Recall@100 / MRR, their mean and standard
deviation, and the paired bootstrap interval (over users) of the model minus SASRec and minus
EASE on per-user values averaged over the seeds (the seed noise averaged out, the user sampling
kept). The ablation of a collaborative fusion: reciprocal-rank fusion of the model with EASE,
``1/(60 + rank_model) + w/(60 + rank_ease)``, ``w`` chosen on the validation split (seed-mean
NDCG@10), reported on test. Writes ``benchmarks/results/seed_robustness.{json,md}``.

    python -m benchmarks.seed_robustness          # ~35 min on 2 cores (3 seeds, both splits)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tfrecs_llm  # noqa: F401  (Keras 2 for tf.keras before TensorFlow loads)
from benchmarks.datasets.movielens100k import fetch_movielens_100k
from benchmarks.quality_movielens100k import HEADLINE, MODEL_OVERRIDES, paired_differences
from tfrecs_llm import EvaluationConfig
from tfrecs_llm.config import Config
from tfrecs_llm.data.loaders import load_movielens_100k
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.evaluation.baselines.ease import ease_scorer
from tfrecs_llm.evaluation.baselines.sasrec import SasRecConfig, sasrec_scorer
from tfrecs_llm.evaluation.compare import recommender_scorer
from tfrecs_llm.evaluation.protocol import HeldOutSet, ScoreFn, per_query_metrics, rank_held_out

RESULTS = Path(__file__).parent / "results"
CHOSEN = {"train.learning_rate": 3e-3, "train.epochs": 60}
METRICS = HEADLINE
FUSION_WEIGHTS = (0.25, 0.5, 1.0)
RRF_K = 60


def catalog_ranks(scores: np.ndarray) -> np.ndarray:
    """``[n, num_items]`` 0-based rank of each item in its row's scores (best = 0)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(scores.shape[1]), scores.shape), axis=1)
    return ranks


def rank_fusion(first: ScoreFn, second: ScoreFn, weight: float) -> ScoreFn:
    """Reciprocal-rank fusion ``1/(k + rank_first) + weight/(k + rank_second)``."""
    def score(queries: pd.DataFrame) -> np.ndarray:
        return 1.0 / (RRF_K + catalog_ranks(first(queries))) + weight / (RRF_K + catalog_ranks(second(queries)))

    return score


def per_user(score_fn: ScoreFn, held_out: HeldOutSet) -> dict[str, np.ndarray]:
    ranks, _ = rank_held_out(score_fn, held_out, top_k=1)
    return {m: v for m, v in per_query_metrics(ranks).items() if m in METRICS}


def run_split(items: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, seeds: list[int]) -> dict:
    """Per-user metrics of EASE, and per seed of the model, SASRec and the fusions."""
    from tfrecs_llm import Recommender

    item_ids = items["item_id"].to_numpy(dtype=str)
    held_out = HeldOutSet.build(UserTextBuilder({}), item_ids, train, test)
    ease, ease_chosen = ease_scorer(train, item_ids)
    values: dict = {"ease": per_user(ease, held_out), "model": [], "sasrec": [],
                    "fusion": {w: [] for w in FUSION_WEIGHTS}, "seconds": {"model": [], "sasrec": []},
                    "sasrec_epochs": [], "ease_lambda": ease_chosen["lambda"]}
    for seed in seeds:
        started = time.perf_counter()
        config = Config().with_overrides({**MODEL_OVERRIDES, **CHOSEN, "train.seed": seed})
        model = recommender_scorer(Recommender.train(items, train, config, verbose=False), item_ids)
        values["seconds"]["model"].append(round(time.perf_counter() - started, 1))
        values["model"].append(per_user(model, held_out))
        for weight in FUSION_WEIGHTS:
            values["fusion"][weight].append(per_user(rank_fusion(model, ease, weight), held_out))
        started = time.perf_counter()
        sasrec, chosen = sasrec_scorer(train, item_ids, SasRecConfig(seed=seed))
        values["seconds"]["sasrec"].append(round(time.perf_counter() - started, 1))
        values["sasrec"].append(per_user(sasrec, held_out))
        values["sasrec_epochs"].append(chosen["epochs"])
        print(f"seed {seed}: model {summary_line(values['model'][-1])}; sasrec {summary_line(values['sasrec'][-1])}",
              flush=True)
    return values


def summary_line(metrics: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{m} {metrics[m].mean():.4f}" for m in METRICS)


def seed_mean(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-user values averaged over the seeds."""
    return {m: np.mean([run[m] for run in runs], axis=0) for m in METRICS}


def describe(runs: list[dict[str, np.ndarray]]) -> dict:
    per_seed = [{m: round(float(run[m].mean()), 4) for m in METRICS} for run in runs]
    return {"per_seed": per_seed,
            "mean": {m: round(float(np.mean([s[m] for s in per_seed])), 4) for m in METRICS},
            "std": {m: round(float(np.std([s[m] for s in per_seed], ddof=1)), 4) if len(runs) > 1 else 0.0
                    for m in METRICS}}


def paired(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict:
    """Mean and bootstrap interval of (ours - theirs) per metric, as the benchmark reports them."""
    return paired_differences({"ours": ours, "theirs": theirs}, "ours", EvaluationConfig())["theirs"]


def summarise(values: dict) -> dict:
    model, sasrec = seed_mean(values["model"]), seed_mean(values["sasrec"])
    fusion = {}
    for weight, runs in values["fusion"].items():
        fused = seed_mean(runs)
        fusion[str(weight)] = {**describe(runs), "vs_sasrec": paired(fused, sasrec), "vs_model": paired(fused, model)}
    return {
        "model": describe(values["model"]), "sasrec": describe(values["sasrec"]),
        "ease": describe([values["ease"]]), "ease_lambda": values["ease_lambda"],
        "sasrec_epochs": values["sasrec_epochs"], "training_seconds": values["seconds"],
        "model_vs_sasrec": paired(model, sasrec), "model_vs_ease": paired(model, values["ease"]),
        "fusion": fusion,
    }


def markdown(result: dict) -> str:
    lines = []
    for split, summary in result["splits"].items():
        lines += [f"### {split} (seeds {result['seeds']})", "", "| model | " + " | ".join(
            f"{m} mean ± sd" for m in METRICS) + " |", "| --- |" + " --- |" * len(METRICS)]
        rows = [("model", summary["model"]), ("sasrec", summary["sasrec"]), ("ease", summary["ease"])]
        rows += [(f"model + EASE fusion, w {w}", f) for w, f in summary["fusion"].items()]
        for name, d in rows:
            lines.append(f"| {name} | " + " | ".join(f"{d['mean'][m]:.4f} ± {d['std'][m]:.4f}" for m in METRICS) + " |")
        lines += ["", "Paired over users, per-user values averaged over seeds (95% interval):", ""]
        pairs = [("model - sasrec", summary["model_vs_sasrec"]), ("model - ease", summary["model_vs_ease"])]
        pairs += [(f"fusion w {w} - sasrec", f["vs_sasrec"]) for w, f in summary["fusion"].items()]
        for name, d in pairs:
            lines.append(f"- {name}: " + "; ".join(
                f"{m} {v['mean']:+.4f} [{v['interval'][0]:+.4f}, {v['interval'][1]:+.4f}]" for m, v in d.items()))
        lines.append("")
    if "fusion_weight_chosen_on_validation" in result:
        lines.append(f"Fusion weight chosen on validation: {result['fusion_weight_chosen_on_validation']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1])
    parser.add_argument("--splits", nargs="+", default=["validation", "test"], choices=["validation", "test"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    items, events = load_movielens_100k(fetch_movielens_100k())
    train, test = leave_last_out(events)
    fit, validation = leave_last_out(train)
    parts = {"validation": (fit, validation), "test": (train, test)}
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_average_1min_at_start": round(os.getloadavg()[0], 2), "seeds": args.seeds,
              "model_settings": {**MODEL_OVERRIDES, **CHOSEN}, "rrf_k": RRF_K, "splits": {}}
    for split in args.splits:
        print(f"== {split}", flush=True)
        result["splits"][split] = summarise(run_split(items, *parts[split], args.seeds))
    if "validation" in result["splits"]:
        fusion = result["splits"]["validation"]["fusion"]
        result["fusion_weight_chosen_on_validation"] = float(max(fusion, key=lambda w: fusion[w]["mean"]["ndcg@10"]))
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "seed_robustness.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.output / "seed_robustness.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
