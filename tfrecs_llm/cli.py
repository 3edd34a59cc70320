"""``tfrecs-llm``: train, export and query text two-tower recommenders from the shell.

Errors in what the user gave (files, columns, options) print one paragraph and exit with
status 2; TensorFlow is imported only once a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError)


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set expects section.key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _config(args: argparse.Namespace):
    from tfrecs_llm.config import Config

    config = Config.load(args.config) if args.config else Config()
    overrides = dict(args.set or [])
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    if getattr(args, "strategy", None) is not None:
        overrides["train.strategy"] = args.strategy
    return config.with_overrides(overrides) if overrides else config.validate()


def cmd_train(args: argparse.Namespace) -> int:
    from tfrecs_llm.api import Recommender
    from tfrecs_llm.data.schema import load_interactions, load_items, validate_interactions, validate_items
    from tfrecs_llm.data.splits import leave_last_out

    config = _config(args)
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
    from tfrecs_llm.distribute import is_chief, make_strategy

    if not is_chief(make_strategy(config.train.strategy)):
        # Every worker trained the same replicated model; the chief alone writes it.
        print("training done on this worker; the chief worker trains the ranker and writes --output")
        return 0
    if ranker_events is not None and len(ranker_events):
        recommender.train_ranker(ranker_events, verbose=not args.quiet)
    output = recommender.save(args.output)
    print(f"saved model to {output}")
    if test is not None and len(test):
        metrics = recommender.evaluate(train, test)
        if recommender.ranker is not None:
            metrics.update(recommender.evaluate_ranking(train, test))
        (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
        _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict[str, dict[str, float]]) -> None:
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
        cells = "".join(f"{values[n]:>20.4f}" if n in values else f"{'-':>20}" for n in names)
        print(f"  {labels.get(model, model):<30}" + cells)


def cmd_export(args: argparse.Namespace) -> int:
    from tfrecs_llm.api import Recommender

    recommender = Recommender.load(args.model)
    path = recommender.export(args.base_path, args.name, version=args.version, index_kind=args.index, k=args.k)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"exported {path} ({size / 1e6:.1f} MB)")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    exclude = [args.exclude.split(",")] * len(args.texts) if args.exclude else None
    if bool(args.model) == bool(args.saved_model):
        raise ValueError("recommend needs exactly one of --model (a trained model) or --saved-model (an export)")
    if args.model:
        from tfrecs_llm.api import Recommender

        recommender = Recommender.load(args.model)
        titles = dict(zip(recommender.catalog.item_ids, recommender.catalog.items["title"]))
        results = recommender.recommend(args.texts, k=args.k, exclude_item_ids=exclude)
    else:
        from tfrecs_llm.export.predict import export_titles, predict_saved_model

        titles = export_titles(args.saved_model)
        results = predict_saved_model(args.saved_model, args.texts, exclude_item_ids=exclude, k=args.k)
    for text, recs in zip(args.texts, results):
        print(f"\n{text!r}")
        for rank, (item_id, score) in enumerate(recs, 1):
            title = titles.get(item_id, "")
            print(f"  {rank:>2}. {item_id:<12} {score:7.3f}  {title}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from tfrecs_llm.export.op_audit import audit_saved_model

    report = audit_saved_model(args.export_dir, target=args.target)
    print(report.format())
    if args.load_check:
        from tfrecs_llm.export.servability import ServabilityToolError, check_servable

        try:
            result = check_servable(args.export_dir, target=args.target)
        except ServabilityToolError as error:
            raise ValueError(f"cannot run the C++ load check: {error}") from error
        print(result.format())
        return 0 if report.ok and result.ok else 1
    return 0 if report.ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from tfrecs_llm.serving import serve

    base = Path(args.model_base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"--model_base_path {base} is not a directory; expected e.g. saved_models/demo")
    serve(
        base,
        args.model_name or base.name,
        host=args.host,
        rest_port=args.rest_api_port,
        grpc_port=args.port,
        poll_seconds=args.file_system_poll_wait_seconds,
        keep_versions=args.keep_versions,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrecs-llm",
        description="Text two-tower recommenders on TensorFlow Recommenders with a pretrained BERT.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train on items + interactions and save the model")
    train.add_argument("--items", help="items CSV/Parquet: item_id, title, description[, category, tags, published_at]")
    train.add_argument("--interactions", help="interactions CSV/Parquet: user_id, item_id, timestamp[, rating, label, user_text]")
    train.add_argument("--sample", action="store_true", help="use the bundled sample data instead of --items/--interactions")
    train.add_argument("--output", required=True, help="directory to save the trained model in (replaced if it exists)")
    train.add_argument("--config", help="JSON config file (see tfrecs_llm.config.Config); defaults otherwise")
    train.add_argument("--set", action="append", type=_parse_override, metavar="SECTION.KEY=VALUE",
                       help="override one config value, e.g. --set train.epochs=3 --set encoder.trainable=full (repeatable)")
    train.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    train.add_argument("--holdout", choices=["last", "none"], default="last",
                       help="'last': hold out each user's last event and report Recall@10/NDCG@10 vs popularity "
                            "(default); 'none': train on every event")
    train.add_argument("--checkpoint-dir", help="write a checkpoint every epoch here and resume from the latest one")
    from tfrecs_llm.config import DISTRIBUTION_STRATEGIES

    train.add_argument("--strategy", choices=DISTRIBUTION_STRATEGIES,
                       help="tf.distribute strategy: default (one device), mirrored (every local GPU), "
                            "multi_worker (the machines in TF_CONFIG; run the same command on each); "
                            "shortcut for --set train.strategy=NAME")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(run=cmd_train)

    export = commands.add_parser("export", help="export a trained model as a TF Serving SavedModel version")
    export.add_argument("--model", required=True, help="directory written by `train --output`")
    export.add_argument("--base-path", default="saved_models", help="TF Serving model base path (default: saved_models)")
    export.add_argument("--name", required=True, help="model name: the export goes to BASE_PATH/NAME/VERSION/")
    export.add_argument("--version", type=int, help="integer version (default: highest existing + 1)")
    export.add_argument("--index", choices=["auto", "scann", "brute_force"],
                        help="top-k index: scann (approximate, CPU, custom TF Serving build), brute_force "
                             "(exact, stock TF Serving CPU/GPU), auto (scann for large catalogs); default from config")
    export.add_argument("--k", type=int, help="items returned per query (default from config: 10)")
    export.set_defaults(run=cmd_export)

    recommend = commands.add_parser("recommend", help="recommend items for user texts")
    recommend.add_argument("texts", nargs="+", help="one or more user texts (free text and/or titles of recent items)")
    recommend.add_argument("--model", help="directory written by `train --output`")
    recommend.add_argument("--saved-model", help="an exported version folder (saved_models/demo/1) or model folder (saved_models/demo: its latest version)")
    recommend.add_argument("--k", type=int, default=10, help="how many items per text (default 10)")
    recommend.add_argument("--exclude", help="comma-separated item ids never to recommend (e.g. already seen)")
    recommend.set_defaults(run=cmd_recommend)

    serve = commands.add_parser(
        "serve", help="serve exports locally with TF Serving's REST/gRPC API, feedback and live version updates"
    )
    serve.add_argument("--model_base_path", required=True,
                       help="folder holding the integer version folders, e.g. saved_models/demo (as in TF Serving)")
    serve.add_argument("--model_name", help="name in request URLs (default: the folder's name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; no authentication)")
    serve.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default 8501, as TF Serving)")
    serve.add_argument("--port", type=int, help="gRPC PredictionService port (TF Serving uses 8500); off by default")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=2.0,
                       help="how often to look for new versions (default 2)")
    serve.add_argument("--keep_versions", type=int,
                       help="delete all but the newest N version folders once not served (default: keep all)")
    serve.set_defaults(run=cmd_serve)

    audit = commands.add_parser(
        "audit", help="check that an export only uses ops the target TF Serving registers"
    )
    audit.add_argument("export_dir", help="a version folder (saved_models/demo/1) or model folder (its latest version)")
    audit.add_argument("--target", choices=["stock", "scann"], default="stock",
                       help="stock: tensorflow/serving >= 2.20 (TensorFlow + TF Text ops); "
                            "scann: a TF Serving build that also links ScaNN's ops")
    audit.add_argument("--load-check", action="store_true",
                       help="also load the export with TensorFlow's C++ SavedModel loader (the one TF Serving "
                            "uses) and run serving_default; compiles a small program with g++ once")
    audit.set_defaults(run=cmd_audit)

    from tfrecs_llm.cli_updates import add_update_commands

    add_update_commands(commands)
    from tfrecs_llm.cli_evaluate import add_evaluate_command

    add_evaluate_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"tfrecs-llm {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
