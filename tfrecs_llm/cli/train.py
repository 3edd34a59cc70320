"""``tfrecs-llm train``: items + interactions -> a saved model, with a held-out report."""

from __future__ import annotations

import argparse
import json

from tfrecs_llm.cli.common import announce_device, model_config, parse_override
from tfrecs_llm.config import DISTRIBUTION_STRATEGIES


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``train`` on the ``tfrecs-llm`` subcommand parsers."""
    train = commands.add_parser("train", help="train on items + interactions and save the model")
    train.add_argument("--items", help="items CSV/Parquet: item_id, title, description[, category, tags, published_at]")
    train.add_argument("--interactions", help="interactions CSV/Parquet: user_id, item_id, timestamp[, rating, label, user_text]")
    train.add_argument("--sample", action="store_true", help="use the bundled sample data instead of --items/--interactions")
    train.add_argument("--output", required=True, help="directory to save the trained model in (replaced if it exists)")
    train.add_argument("--config", help="JSON config file (see tfrecs_llm.config.Config); defaults otherwise")
    train.add_argument("--set", action="append", type=parse_override, metavar="SECTION.KEY=VALUE",
                       help="override one config value, e.g. --set train.epochs=3 --set encoder.trainable=full (repeatable)")
    train.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    train.add_argument("--holdout", choices=["last", "none"], default="last",
                       help="'last': hold out each user's last event and report Recall@10/NDCG@10 vs popularity "
                            "(default); 'none': train on every event")
    train.add_argument("--checkpoint-dir", help="write a checkpoint every epoch here and resume from the latest one")
    train.add_argument("--strategy", choices=DISTRIBUTION_STRATEGIES,
                       help="tf.distribute strategy: default (one device), mirrored (every local GPU), "
                            "multi_worker (the machines in TF_CONFIG; run the same command on each); "
                            "shortcut for --set train.strategy=NAME")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm train``: returns the exit status."""
    from tfrecs_llm.data.schema import load_interactions, load_items, validate_interactions, validate_items
    from tfrecs_llm.data.splits import leave_last_out
    from tfrecs_llm.recommender import Recommender
    from tfrecs_llm.training.distribute import is_chief, make_strategy

    config = model_config(args)
    make_strategy(config.train.strategy)  # a multi-worker strategy must come before any other TF call
    announce_device()
    if args.sample:
        from tfrecs_llm.data.sample import load_sample

        raw_items, raw_events = load_sample()
        items = validate_items(raw_items, source="sample items.csv")
        events = validate_interactions(raw_events, items, source="sample interactions.csv")
    else:
        if not (args.items and args.interactions):
            raise ValueError("train needs --items and --interactions (or --sample for the bundled data)")
        items = load_items(args.items)
        events = load_interactions(args.interactions, items)
    train, test = (events, None) if args.holdout == "none" else leave_last_out(events)
    # The ranker learns from events retrieval never trained on: each user's last training event.
    retrieval_train, ranker_events = leave_last_out(train) if config.ranking.enabled else (train, None)
    recommender = Recommender.train(
        items, retrieval_train, config, checkpoint_dir=args.checkpoint_dir, verbose=not args.quiet
    )
    if not is_chief(make_strategy(config.train.strategy)):
        # Every worker trained the same replicated model; the chief alone writes it.
        print("training done on this worker; the chief worker trains the ranker and writes --output")
        return 0
    if ranker_events is not None and len(ranker_events):
        recommender.train_ranker(ranker_events, verbose=not args.quiet, history=retrieval_train)
    output = recommender.save(args.output)
    print(f"saved model to {output}")
    if test is not None and len(test):
        metrics = recommender.evaluate(train, test)
        if recommender.ranker is not None:
            metrics.update(recommender.evaluate_ranking(train, test))
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print_metrics(metrics)
    return 0


def print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    """The held-out table ``train`` prints: a row per model, a column per metric."""
    names = ["recall@10", "ndcg@10", "mrr", "recall@100", "category_entropy@10", "ild@10"]
    print(f"held-out evaluation ({int(metrics['model']['num_queries'])} users, last event each):")
    print(f"  {'':<30}" + "".join(f"{n:>20}" for n in names))
    labels = {
        "model": "two-tower, full catalog",
        "popularity": "popularity, full catalog",
        "retrieval": "two-tower, top-50 order",
        "ranker": "ranker over the top 50",
    }
    for model, values in metrics.items():
        if model == "training":
            continue
        cells = "".join(f"{values[n]:>20.4f}" if n in values else f"{'-':>20}" for n in names)
        print(f"  {labels.get(model, model):<30}" + cells)
