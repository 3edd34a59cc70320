"""Which sequence-tower settings to bring to the MovieLens test: a sweep on validation only.

Each variant of the benchmark model (`benchmarks.quality_movielens100k`: sequential query tower,
learning rate 3e-3 and 60 epochs as chosen there) is trained on the train part minus each
user's last train event and scored on those events (full catalog, train items excluded). The
test events are never looked at. Writes benchmarks/results/sequence_tower_sweep.json.

    python -m benchmarks.sequence_tower_sweep     # ~2.5 min per variant on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import tfrecs_llm  # noqa: F401  (Keras 2 for tf.keras before TensorFlow loads)
from benchmarks.datasets.movielens100k import fetch_movielens_100k
from benchmarks.quality_movielens100k import MODEL_OVERRIDES
from tfrecs_llm.config import Config
from tfrecs_llm.data.loaders import load_movielens_100k
from tfrecs_llm.data.splits import leave_last_out

RESULTS = Path(__file__).parent / "results"
CHOSEN = {"train.learning_rate": 3e-3, "train.epochs": 60}
VARIANTS = {
    "as benchmarked": {},
    "embedding_dim 128": {"model.embedding_dim": 128},
    "temperature 0.1": {"train.temperature": 0.1},
    "temperature 0.02": {"train.temperature": 0.02},
    "history_dropout 0.5": {"model.history_dropout": 0.5},
    "item_id_embedding_dim 64": {"model.item_id_embedding_dim": 64},
    "history_blocks 3": {"model.history_blocks": 3},
    "item_id_dropout 0": {"model.item_id_dropout": 0.0},
    "history_heads 2": {"model.history_heads": 2},
    "history_length 100": {"model.history_length": 100},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--output", type=Path, default=RESULTS / "sequence_tower_sweep.json")
    args = parser.parse_args()
    from tfrecs_llm import Recommender

    items, events = load_movielens_100k(fetch_movielens_100k())
    train, _ = leave_last_out(events)
    fit, validation = leave_last_out(train)
    earlier = json.loads(args.output.read_text()).get("variants", {}) if args.output.is_file() else {}
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_average_1min_at_start": round(os.getloadavg()[0], 2), "base": {**MODEL_OVERRIDES, **CHOSEN},
              "validation_events": len(validation), "variants": earlier}  # a partial run adds to the last
    for name in args.variants:
        config = Config().with_overrides({**MODEL_OVERRIDES, **CHOSEN, **VARIANTS[name]})
        started = time.perf_counter()
        model = Recommender.train(items, fit, config, verbose=False)
        metrics = model.evaluate(fit, validation)["model"]
        row = {"overrides": VARIANTS[name], "seconds": round(time.perf_counter() - started, 1),
               **{m: round(float(metrics[m]), 4) for m in ("recall@10", "ndcg@10", "recall@100", "mrr")}}
        result["variants"][name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
