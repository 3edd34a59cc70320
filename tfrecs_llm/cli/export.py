"""``tfrecs-llm export``: a saved model -> the next TF Serving version under BASE_PATH/NAME/."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``export`` on the ``tfrecs-llm`` subcommand parsers."""
    export = commands.add_parser("export", help="export a trained model as a TF Serving SavedModel version")
    export.add_argument("--model", required=True, help="directory written by `train --output`")
    export.add_argument("--base-path", default="saved_models", help="TF Serving model base path (default: saved_models)")
    export.add_argument("--name", required=True, help="model name: the export goes to BASE_PATH/NAME/VERSION/")
    export.add_argument("--version", type=int, help="integer version (default: highest existing + 1)")
    export.add_argument("--index", choices=["auto", "scann", "brute_force"],
                        help="top-k index: scann (approximate, CPU, custom TF Serving build), brute_force "
                             "(exact, stock TF Serving CPU/GPU), auto (scann for large catalogs); default from config")
    export.add_argument("--k", type=int, help="items returned per query (default from config: 10)")
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm export``: returns the exit status."""
    from tfrecs_llm.recommender import Recommender

    recommender = Recommender.load(args.model)
    path = recommender.export(args.base_path, args.name, version=args.version, index_kind=args.index, k=args.k)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"exported {path} ({size / 1e6:.1f} MB)")
    return 0
