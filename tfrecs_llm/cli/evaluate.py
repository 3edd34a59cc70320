"""``tfrecs-llm evaluate``: a saved model against the baselines on held-out events, with a report.

TensorFlow is imported only once the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tfrecs_llm.cli.common import parse_override
from tfrecs_llm.evaluation.baselines import BASELINE_NAMES as BASELINES
from tfrecs_llm.evaluation.baselines import DEFAULT_BASELINES

EVALUATE_DESCRIPTION = """\
Splits the interactions with leave-last-out (each user's last event, by time, is held out; users
with a single event stay in train) and ranks every held-out item among the whole catalog, the
user's train items excluded, for the model and each baseline. Reports Recall@10/100, NDCG@10/100
and MRR with 95% bootstrap intervals, catalog coverage@10, ILD@10 (on pretrained item-text
embeddings), category entropy@10, and the ranking metrics on the cold-start slice (held-out items
without any train event). The model must have been trained on the train part only, as
`tfrecs-llm train` does with its default --holdout last.

Baselines: popularity (train-event counts), id_only (TFRS basic-retrieval tutorial model over
user and item ids), tfidf (TF-IDF cosine of user text and item text), zero_shot (the pretrained
encoder's pooled embeddings, no training), ease (closed-form item-item, Steck 2019), item_knn
(cosine item-item neighbours) and sasrec (self-attentive sequential model over ids, Kang &
McAuley 2018). ease, item_knn and sasrec choose lambda, k and epochs on a validation split
carved from the train part (each user's last train event), never on the held-out events.

Settings (--set KEY=VALUE): ks=[10,100], top_k=10, bootstrap_resamples=1000, confidence=0.95,
seed=0, id_only.epochs=10, id_only.batch_size=8192, id_only.embedding_dim=32,
id_only.learning_rate=0.1, id_only.seed=42, ease.lambdas=[50.0,...,2000.0],
item_knn.neighbours=[10,...,400], sasrec.hidden_dim=64, sasrec.num_blocks=2, sasrec.max_length=50,
sasrec.dropout=0.2, sasrec.max_epochs=200 (and the other fields of SasRecConfig).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``evaluate`` on the ``tfrecs-llm`` subcommand parsers."""
    evaluate = subparsers.add_parser(
        "evaluate", help="compare a trained model with baselines on held-out events (report + charts)",
        description=EVALUATE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--model",
                          help="directory written by `train --output`, trained on the train part of the same "
                               "split; omit it to evaluate only the baselines")
    evaluate.add_argument("--sample", action="store_true",
                          help="use the bundled sample data instead of --items/--interactions")
    evaluate.add_argument("--items", help="items CSV/Parquet: item_id, title, description[, category, ...]")
    evaluate.add_argument("--interactions",
                          help="ALL interactions CSV/Parquet (user_id, item_id, timestamp[, ...]); the split "
                               "happens here")
    evaluate.add_argument("--baselines", nargs="*", choices=BASELINES, default=list(DEFAULT_BASELINES),
                          metavar="NAME",
                          help=f"baselines to compare with, any of {', '.join(BASELINES)} (default: all but "
                               "sasrec, which trains for minutes; give the option with no names for none)")
    evaluate.add_argument("--output",
                          help="directory for report.json, ranks.csv (per-query ranks) and PNG charts "
                               "(default: print the table only)")
    evaluate.add_argument("--set", action="append", type=parse_override, metavar="KEY=VALUE",
                          help="override an evaluation setting, e.g. --set id_only.epochs=3 --set ks=[5,20] "
                               "(repeatable; the list is in the description above)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress output (the table is still printed)")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm evaluate``: returns the exit status."""
    if args.sample == bool(args.items or args.interactions):
        raise ValueError("evaluate needs either --sample or both --items and --interactions")
    if not args.sample and not (args.items and args.interactions):
        raise ValueError("evaluate needs both --items and --interactions (or --sample for the bundled data)")
    if args.model is not None and not (Path(args.model) / "manifest.json").is_file():
        raise FileNotFoundError(
            f"--model {args.model} is not a saved tfrecs_llm model (no manifest.json); expected a "
            "directory written by `tfrecs-llm train --output`"
        )
    if args.model is None and not args.baselines:
        raise ValueError("nothing to evaluate: give --model and/or at least one baseline")
    from tfrecs_llm.evaluation.compare import EvaluationConfig, evaluate

    config = EvaluationConfig().with_overrides(dict(args.set or []))
    if args.sample:
        from tfrecs_llm.data.sample import load_sample

        items, interactions = load_sample()
    else:
        items, interactions = args.items, args.interactions
    report = evaluate(
        args.model, items, interactions, baselines=args.baselines, output_dir=args.output,
        config=config, verbose=not args.quiet,
    )
    if args.quiet:
        print(report.format_table())
    return 0
