"""Does the ranking head beat retrieval order on real data? MovieLens 100K, one run.

Retrieval: the benchmark model (`benchmarks.quality_movielens100k`: sequential query tower,
learning rate and epochs as chosen there on validation) trained on each user's train events
minus the last ``--lists-per-user``; the ranker (lambda_div 0, relevance only) learns from lists
retrieved for those held-out events, each query built from the events before it. Both orders
are scored on the test events (each user's last), top 10 of the same ``num_candidates`` lists;
the paired bootstrap interval of (ranker - retrieval) says whether the gap is real. Writes
``benchmarks/results/ranking_movielens100k.json``.

    python -m benchmarks.ranking_movielens100k [--lists-per-user 1 5]   # ~5 min per setting
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
from benchmarks.quality_movielens100k import MODEL_OVERRIDES
from tfrecs_llm.config import Config, RankingConfig
from tfrecs_llm.data.loaders import load_movielens_100k
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.evaluation.protocol import held_out_queries, per_query_metrics, train_histories
from tfrecs_llm.evaluation.ranking import score_lists
from tfrecs_llm.metrics.bootstrap import bootstrap_intervals
from tfrecs_llm.ranking.lists import retrieve_candidates
from tfrecs_llm.recommender import Recommender

RESULTS = Path(__file__).parent / "results"
CHOSEN = {"train.learning_rate": 3e-3, "train.epochs": 60}  # the quality benchmark's validation choice


def ranks_in_lists(candidate_rows: np.ndarray, scores: np.ndarray, targets: np.ndarray, miss: int) -> np.ndarray:
    """0-based rank of each target in its list ordered by ``scores`` (``miss`` if not in it)."""
    ordered = np.take_along_axis(candidate_rows, np.argsort(-scores, axis=1, kind="stable"), axis=1)
    hit = ordered == targets[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), miss)


def measure(items, events, lists_per_user: int, seed: int) -> dict:
    train, test = leave_last_out(events)
    retrieval, held = train, []
    for _ in range(lists_per_user):  # each user's last lists_per_user train events
        retrieval, last = leave_last_out(retrieval)
        held.append(last)
    ranker_events = pd.concat(held).sort_index()
    ranking = RankingConfig(max_events_per_user=lists_per_user)
    config = Config().with_overrides({**MODEL_OVERRIDES, **CHOSEN, "ranking.enabled": True,
                                     "ranking.max_events_per_user": lists_per_user, "train.seed": seed})
    started = time.perf_counter()
    model = Recommender.train(items, retrieval, config, verbose=False)
    trained = time.perf_counter() - started
    model.train_ranker(ranker_events, ranking, verbose=False, history=retrieval)
    texts, excluded, targets = held_out_queries(model.builder, model.catalog.row_index(), train, test)
    queries = model.query_embeddings(texts, history_item_ids=train_histories(train, test["user_id"]))
    lists = retrieve_candidates(queries, model.item_embeddings(), excluded, ranking.num_candidates)
    miss = len(model.catalog.item_ids)
    per_query = {
        "retrieval": per_query_metrics(ranks_in_lists(lists["candidate_rows"], lists["retrieval_score"], targets, miss), (10,)),
        "ranker": per_query_metrics(ranks_in_lists(lists["candidate_rows"], score_lists(model.ranker, {"query_embedding": queries, **lists}), targets, miss), (10,)),
    }
    delta = {m: per_query["ranker"][m] - per_query["retrieval"][m] for m in ("ndcg@10", "recall@10", "mrr")}
    intervals = bootstrap_intervals(delta, 1000, 0.95, 0)
    return {
        "lists_per_user": lists_per_user, "ranker_events": len(ranker_events), "retrieval_events": len(retrieval),
        "retrieval_train_seconds": round(trained, 1),
        "retrieval": {m: float(v.mean()) for m, v in per_query["retrieval"].items()},
        "ranker": {m: float(v.mean()) for m, v in per_query["ranker"].items()},
        "ranker_minus_retrieval": {m: {"mean": float(delta[m].mean()), "interval": list(intervals[m])} for m in delta},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists-per-user", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=RESULTS / "ranking_movielens100k.json")
    args = parser.parse_args()
    items, events = load_movielens_100k(fetch_movielens_100k())
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_average_1min_at_start": round(os.getloadavg()[0], 2), "settings": []}
    for count in args.lists_per_user:
        setting = measure(items, events, count, args.seed)
        result["settings"].append(setting)
        print(json.dumps(setting, indent=1), flush=True)
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
