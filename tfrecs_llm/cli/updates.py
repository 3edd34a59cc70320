"""``tfrecs-llm add-items`` and ``tfrecs-llm update``: a saved model plus new items or new
feedback events -> the saved model updated in place (or elsewhere) and the next TF Serving version.

A server polling ``BASE_PATH/NAME`` (TF Serving or ``tfrecs-llm serve``) switches to the new
version by itself. TensorFlow is imported only once a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ADD_ITEMS_DESCRIPTION = """\
Adds new items to a saved model's catalog without retraining: their title and description are
embedded by the pretrained text encoder and their ids use the item-id embedding's out-of-vocabulary
bucket, so they are recommendable at once. Saves the model (replacing --model, or to --output) and
exports the next version under BASE_PATH/NAME/.
"""

UPDATE_DESCRIPTION = """\
Fine-tunes a saved model on the feedback events a `tfrecs-llm serve` server logged (POST
/v1/feedback) that it has not trained on yet, saves it (replacing --model, or to --output) and
exports the next version under BASE_PATH/NAME/. The model remembers the last event id it folded
in, so running update again continues from there (and does nothing when nothing new was logged);
--since-event-id overrides it. User texts are built as in training from the base interactions
plus every logged event; dislikes are neither trained on nor part of user texts.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``add-items`` and ``update`` on the ``tfrecs-llm`` subcommand parsers."""
    formatter = argparse.RawDescriptionHelpFormatter
    add = subparsers.add_parser(
        "add-items", help="add new items to a saved model (no retraining) and export the next version",
        description=ADD_ITEMS_DESCRIPTION, formatter_class=formatter,
    )
    add.add_argument("new_items", metavar="NEW_ITEMS",
                     help="CSV/Parquet of the new items: item_id, title, description[, category, tags, "
                          "published_at]; every item_id must be new to the catalog")
    _model_options(add)
    _export_options(add)
    add.set_defaults(run=run_add_items)

    update = subparsers.add_parser(
        "update", help="fine-tune a saved model on logged feedback events and export the next version",
        description=UPDATE_DESCRIPTION, formatter_class=formatter,
    )
    _model_options(update)
    update.add_argument("--events-db", required=True,
                        help="the server's feedback log: a SQLite file (by default MODEL_BASE_PATH/events.sqlite "
                             "of `tfrecs-llm serve`) or postgresql://user@host:port/db")
    update.add_argument("--since-event-id", type=int, default=None,
                        help="train only on events with a larger event id (default: the last event id the model "
                             "folded in, 0 for a model never updated)")
    update.add_argument("--interactions", required=True,
                        help="the interactions CSV/Parquet the model was trained on (user_id, item_id, timestamp); "
                             "with the logged events it gives each user's history for the user texts")
    update.add_argument("--epochs", type=int, default=1, help="passes over the new events (default 1)")
    update.add_argument("--checkpoint-dir",
                        help="resume from the latest checkpoint here (weights and optimizer state, e.g. the "
                             "--checkpoint-dir of `train`) and write one after every epoch; default: continue "
                             "from the saved weights with a fresh optimizer")
    _export_options(update)
    update.set_defaults(run=run_update)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="directory written by `train --output` (or a previous update)")
    parser.add_argument("--output",
                        help="save the updated model here instead of replacing --model (written atomically either way)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-path", default="saved_models",
                        help="TF Serving model base path (default: saved_models)")
    parser.add_argument("--name", required=True,
                        help="model name: the new version goes to BASE_PATH/NAME/<highest existing + 1>/")
    parser.add_argument("--index", choices=["auto", "scann", "brute_force"],
                        help="top-k index of the new version (default: that of the latest version under "
                             "BASE_PATH/NAME, else the model's config), see `export --help`")
    parser.add_argument("--k", type=int,
                        help="items returned per query (default: as the latest version, else the config)")


def _export_settings(args: argparse.Namespace) -> tuple[str | None, int | None]:
    """Index kind and k: the options, else those of the latest version, else None (config)."""
    from tfrecs_llm.export.layout import versions

    model_dir = Path(args.base_path) / args.name
    found = versions(model_dir)
    index: dict[str, Any] = {}
    if found:
        card = model_dir / str(found[-1]) / "assets.extra" / "model_card.json"
        if card.is_file():
            index = json.loads(card.read_text()).get("index", {})
    return args.index or index.get("kind"), args.k or index.get("k")


def _save_and_export(recommender: Any, args: argparse.Namespace) -> None:
    index_kind, k = _export_settings(args)
    saved = recommender.save(args.output or args.model)
    print(f"saved model to {saved}")
    path = recommender.export(args.base_path, args.name, index_kind=index_kind, k=k)
    print(f"exported {path} ({len(recommender.catalog.item_ids)} items)")


def run_add_items(args: argparse.Namespace) -> int:
    """``tfrecs-llm add-items``: returns the exit status."""
    if not Path(args.new_items).is_file():
        raise FileNotFoundError(
            f"{args.new_items}: file not found; expected a CSV or Parquet file of new items with columns "
            "item_id, title, description"
        )
    from tfrecs_llm.recommender import Recommender

    recommender = Recommender.load(args.model)
    before = len(recommender.catalog.item_ids)
    updated = recommender.add_items(args.new_items, verbose=not args.quiet)
    print(f"added {len(updated.catalog.item_ids) - before} items to the catalog of {before}")
    _save_and_export(updated, args)
    return 0


def run_update(args: argparse.Namespace) -> int:
    """``tfrecs-llm update``: returns the exit status; prints the last event id consumed last."""
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.since_event_id is not None and args.since_event_id < 0:
        raise ValueError(f"--since-event-id must be >= 0, got {args.since_event_id}")
    from tfrecs_llm.data.events import events_to_interactions
    from tfrecs_llm.serving.event_logs import open_event_log

    try:
        log = open_event_log(args.events_db, must_exist=True)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--events-db {error} (by default MODEL_BASE_PATH/events.sqlite), or a "
                                "postgresql:// URL") from error
    except (ValueError, ConnectionError) as error:
        raise type(error)(f"--events-db: {error}") from error
    try:
        logged = log.events_since(0)
        events_db = log.location  # a URL without its password
    finally:
        log.close()
    from tfrecs_llm.training.persistence import is_model_dir, read_state

    if args.since_event_id is None and not is_model_dir(args.model):
        raise FileNotFoundError(f"--model {args.model} is not a saved tfrecs_llm model (no manifest.json)")
    since = args.since_event_id if args.since_event_id is not None else int(read_state(args.model).get("last_event_id", 0))
    new = [event for event in logged if event.event_id > since]
    if not new:
        print(f"no new events in {events_db} after event id {since} (what the model has folded in); "
              "nothing to do, the model and its versions are unchanged")
        print(f"last event id: {since}")
        return 0
    last_id = new[-1].event_id

    import pandas as pd

    from tfrecs_llm.data.events import positive_events
    from tfrecs_llm.data.schema import load_interactions, validate_interactions
    from tfrecs_llm.recommender import Recommender

    recommender = Recommender.load(args.model)
    items = recommender.catalog.items
    base = load_interactions(args.interactions, items)
    # Indexed by event id, so that an error names the offending events.
    events = events_to_interactions(logged)
    events.index = events["event_id"].to_numpy()
    events = validate_interactions(events, items, source=f"{events_db} (rows are event ids)")
    fresh = positive_events(events[events["event_id"] > since])
    if fresh.empty:
        print(f"the {len(new)} events after event id {since} are all negative (dislikes); nothing to train on")
    else:
        history = pd.concat([base, events], ignore_index=True)
        recommender.update(fresh, history, args.epochs, args.checkpoint_dir, verbose=not args.quiet)
        recommender.last_event_id = last_id
        print(f"fine-tuned on {len(fresh)} new events (event ids {new[0].event_id}..{last_id}) "
              f"for {args.epochs} epoch(s)")
        _save_and_export(recommender, args)
    print(f"last event id: {last_id}")
    return 0
