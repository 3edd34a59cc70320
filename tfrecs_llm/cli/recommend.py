"""``tfrecs-llm recommend``: user texts -> items, from a saved model or an export."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``recommend`` on the ``tfrecs-llm`` subcommand parsers."""
    recommend = commands.add_parser("recommend", help="recommend items for user texts")
    recommend.add_argument("texts", nargs="+", help="one or more user texts (free text and/or titles of recent items)")
    recommend.add_argument("--model", help="directory written by `train --output`")
    recommend.add_argument("--saved-model", help="an exported version folder (saved_models/demo/1) or model folder (saved_models/demo: its latest version)")
    recommend.add_argument("--k", type=int, default=10, help="how many items per text (default 10)")
    recommend.add_argument("--exclude", help="comma-separated item ids never to recommend (e.g. already seen)")
    recommend.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm recommend``: prints ranked items with scores and titles per text."""
    exclude = [args.exclude.split(",")] * len(args.texts) if args.exclude else None
    if bool(args.model) == bool(args.saved_model):
        raise ValueError("recommend needs exactly one of --model (a trained model) or --saved-model (an export)")
    if args.model:
        from tfrecs_llm.recommender import Recommender

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
