"""Relevance vs diversity: trains the ranker over several lambda_div values on the bundled sample.

Writes benchmarks/results/ranking_tradeoff.json and ranking_tradeoff.png (NDCG@10 against
category entropy@10, one point per lambda_div, plus retrieval order and MMR re-ranking).

    python -m benchmarks.ranking_tradeoff [--model build/demo_model] [--lambdas 0 0.1 0.3 1 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config, RankingConfig
from tfrecs_llm.data.sample import load_sample
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out

RESULTS = Path(__file__).parent / "results"


def lambda_sweep(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    ranker_events: pd.DataFrame,
    lambdas: Sequence[float],
    base: RankingConfig | None = None,
    history: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Held-out NDCG/recall@10, category entropy@10 and ILD@10 of the retrieval order, then of
    the ranker trained on ``ranker_events`` at each ``lambda_div`` (other knobs from ``base``).

    The recommender keeps the ranker of the last lambda.
    """
    base = base or RankingConfig()
    points = [{"stage": "retrieval", "label": "retrieval order", "lambda_div": None,
               **recommender.evaluate_ranking(train, test)["retrieval"]}]
    for lambda_div in lambdas:
        recommender.train_ranker(ranker_events, dataclasses.replace(base, lambda_div=lambda_div), verbose=False,
                                 history=history)
        metrics = recommender.evaluate_ranking(train, test)["ranker"]
        points.append({"stage": "ranker", "label": f"lambda={lambda_div:g}", "lambda_div": lambda_div, **metrics})
        print(f"lambda_div={lambda_div:<5g} " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
    return points


def plot_tradeoff(points: list[dict[str, Any]], axis: Any, diversity: str = "category_entropy@10") -> None:
    """Draws NDCG@10 against ``diversity`` (a metric of the points, e.g. ``ild@10``) on a
    matplotlib ``axis``: one marker per point, the ranker's points joined in lambda order."""
    for point in points:
        marker = {"retrieval": "s", "ranker": "o"}[point["stage"]]
        axis.scatter(point[diversity], point["ndcg@10"], marker=marker, color="C0" if marker == "o" else "C3")
        axis.annotate(point["label"], (point[diversity], point["ndcg@10"]), fontsize=8,
                      xytext=(4, 4), textcoords="offset points")
    ranker = [p for p in points if p["stage"] == "ranker"]
    axis.plot([p[diversity] for p in ranker], [p["ndcg@10"] for p in ranker], color="C0", alpha=0.5)
    axis.set_xlabel(f"{diversity} (nats)" if diversity.startswith("category_entropy") else diversity)
    axis.set_ylabel("NDCG@10")
    axis.set_title("Ranker: relevance vs diversity (lambda_div)")
    axis.grid(alpha=0.3)


def _plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    plot_tradeoff(points, axis)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a saved Recommender trained on the sample's train split minus each "
                        "user's last training event (else trains one)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 0.3, 1.0, 3.0])
    args = parser.parse_args()
    raw_items, raw_events = load_sample()
    items = validate_items(raw_items)
    train, test = leave_last_out(validate_interactions(raw_events, items))
    retrieval_train, ranker_events = leave_last_out(train)
    started = time.perf_counter()
    recommender = Recommender.load(args.model) if args.model else Recommender.train(items, retrieval_train, Config())
    points = lambda_sweep(recommender, train, test, ranker_events, args.lambdas, history=retrieval_train)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranking_tradeoff.json").write_text(json.dumps(
        {"data": "bundled sample, leave-last-out", "seconds": time.perf_counter() - started, "points": points}, indent=2))
    _plot(points, RESULTS / "ranking_tradeoff.png")
    print(f"wrote {RESULTS / 'ranking_tradeoff.json'} and ranking_tradeoff.png")


if __name__ == "__main__":
    main()
