"""Live updates without retraining from scratch: Recommender.add_items (text-only new items)
and Recommender.update.

The exported and served side (versions N+1, the CLI, a polling server) is in
tests/integration/test_live_updates.py.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import NEW_ITEM, SPACE_TEXT, tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.cli.updates import add_parser, run_add_items, run_update
from tfrecs_llm.config import Config
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.schema import SchemaError, validate_interactions
from tfrecs_llm.training.retrieval import example_features, training_examples

def _config(**overrides: object) -> Config:
    base = {"train.epochs": 3, "train.batch_size": 32, "encoder.sequence_length": 32}
    return Config().with_overrides({**base, **overrides})


@pytest.fixture(scope="module")
def trained() -> Recommender:
    """24 items in three topics; never modified by the tests (update works on a reloaded copy)."""
    items = tiny_items(per_topic=8)
    return Recommender.train(items, tiny_interactions(), _config(), encoder=make_tiny_encoder(), verbose=False)


def _top_ids(recommender: Recommender, text: str, k: int = 10) -> list[str]:
    return [item for item, _ in recommender.recommend([text], k=k)[0]]


def test_added_item_is_recommended_at_once(trained) -> None:
    updated = trained.add_items(pd.DataFrame([NEW_ITEM]))

    assert len(updated.catalog.item_ids) == 25 and len(trained.catalog.item_ids) == 24
    assert list(updated.catalog.id_vocabulary) == list(trained.catalog.id_vocabulary)
    assert updated.model is trained.model and updated.catalog.text_embeddings.shape == (25, 16)
    assert "space-new" in _top_ids(updated, SPACE_TEXT)
    assert "space-new" not in _top_ids(updated, "pasta sauce cooking")
    assert "space-new" not in _top_ids(updated, "jazz music history")
    assert updated.builder.build("", ["space-new"]) == NEW_ITEM["title"]


def test_added_items_survive_save_and_load(trained, tmp_path) -> None:
    updated = trained.add_items(pd.DataFrame([NEW_ITEM]))
    loaded = Recommender.load(updated.save(tmp_path / "model"), encoder=make_tiny_encoder())
    assert list(loaded.catalog.id_vocabulary) == list(trained.catalog.id_vocabulary)
    np.testing.assert_allclose(loaded.item_embeddings(), updated.item_embeddings(), atol=1e-5)
    assert loaded.query_sample == trained.query_sample != []  # ScaNN keeps tuning on real queries


def test_duplicate_ids_are_rejected_naming_file_and_lines(trained, tmp_path) -> None:
    csv = tmp_path / "new.csv"
    pd.DataFrame([NEW_ITEM, {**NEW_ITEM, "item_id": "space-1"}, {**NEW_ITEM, "item_id": "music-2"}]).to_csv(
        csv, index=False
    )
    with pytest.raises(ValueError, match=r"new.csv: 2 item id\(s\) already in the catalog \(line 3 'space-1', "
                                         r"line 4 'music-2'\)"):
        trained.add_items(csv)
    frame = pd.DataFrame([{**NEW_ITEM, "item_id": "cooking-0"}])
    with pytest.raises(ValueError, match=r"new items: 1 item id\(s\) already in the catalog \(row 0 'cooking-0'\)"):
        trained.add_items(frame)
    with pytest.raises(SchemaError, match="column 'item_id' has 2 duplicate values"):
        trained.add_items(pd.DataFrame([NEW_ITEM, NEW_ITEM]))


def test_bad_item_files_get_clear_errors(trained, tmp_path) -> None:
    with pytest.raises(SchemaError, match="nope.csv: file not found"):
        trained.add_items(tmp_path / "nope.csv")
    (tmp_path / "no_description.csv").write_text("item_id,title\nx,X\n")
    with pytest.raises(SchemaError, match="no_description.csv: missing required column 'description'"):
        trained.add_items(tmp_path / "no_description.csv")
    (tmp_path / "empty_title.csv").write_text("item_id,title,description\nx,,about x\n")
    with pytest.raises(SchemaError, match=r"empty_title.csv: column 'title' has 1 empty value \(first rows: line 2"):
        trained.add_items(tmp_path / "empty_title.csv")
    (tmp_path / "header_only.csv").write_text("item_id,title,description\n")
    with pytest.raises(ValueError, match="header_only.csv: no items to add"):
        trained.add_items(tmp_path / "header_only.csv")


def test_the_ranking_head_is_dropped_with_a_warning(trained, caplog) -> None:
    # add_items only needs to know that a ranker is set
    with_ranker = Recommender(trained.config, trained.encoder, trained.catalog, trained.model, ranker=(object(), None))
    with caplog.at_level(logging.WARNING, logger="tfrecs_llm.recommender"):
        updated = with_ranker.add_items(pd.DataFrame([NEW_ITEM]))
    assert updated.ranker is None and "dropping the ranking head" in caplog.text


def test_a_full_fine_tuning_model_embeds_new_items_with_the_given_pretrained_encoder(trained) -> None:
    full = Recommender(_config(**{"encoder.trainable": "full"}), trained.encoder, trained.catalog, trained.model)
    pretrained = make_tiny_encoder(seed=1)
    updated = full.add_items(pd.DataFrame([NEW_ITEM]), item_encoder=pretrained)
    text = f"{NEW_ITEM['title']}. {NEW_ITEM['description']}"
    expected = pretrained(tf.constant([text])).numpy()[0]
    np.testing.assert_allclose(updated.catalog.text_embeddings[-1], expected, atol=1e-5)


def _new_events() -> pd.DataFrame:
    """Space users (u0, u3) now read cooking; u0 also dislikes an item."""
    rows = [("u0", "cooking-1", 0), ("u0", "cooking-2", 1), ("u3", "cooking-1", 0), ("u3", "cooking-5", 1)]
    events = pd.DataFrame(
        [{"user_id": u, "item_id": i, "timestamp": 1_800_000_000 + 60 * t, "type": "like"} for u, i, t in rows]
    )
    dislike = {"user_id": "u0", "item_id": "space-1", "timestamp": 1_800_000_500, "type": "dislike"}
    return pd.concat([events, pd.DataFrame([dislike])], ignore_index=True)


def _new_event_loss(recommender: Recommender, history: pd.DataFrame) -> float:
    """The two-tower retrieval loss (what fine-tuning minimises) on the positive new events,
    each with its user text as of just before it."""
    events = validate_interactions(history, recommender.catalog.items)
    examples = training_examples(events, recommender.builder, recommender.config)
    examples = examples[(events["type"] == "like").to_numpy()]
    features = example_features(examples, recommender.catalog, recommender.encoder, recommender.config, False)
    dataset = make_dataset(features, batch_size=len(examples), shuffle=False)
    return recommender.model.evaluate(dataset, return_dict=True, verbose=0)["loss"]


def test_update_fine_tunes_in_place_towards_the_new_events(trained, tmp_path) -> None:
    copy = Recommender.load(trained.save(tmp_path / "model"), encoder=make_tiny_encoder())
    history = pd.concat([tiny_interactions(), _new_events()], ignore_index=True)
    before = _new_event_loss(copy, history)
    copy.recommend([SPACE_TEXT], k=5)  # builds the index and the serving stage

    trained_on = copy.update(_new_events(), history, epochs=3, checkpoint_dir=tmp_path / "ckpt")

    assert trained_on == 4  # the four likes; the dislike is not trained on
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-3")
    # The model now fits the new events better (the loss on them fell by more than noise).
    assert _new_event_loss(copy, history) < 0.9 * before
    # In-process answers use the fine-tuned towers: the same as the saved and reloaded model's.
    reloaded = Recommender.load(copy.save(tmp_path / "updated"), encoder=make_tiny_encoder())
    texts = [SPACE_TEXT, "pasta sauce cooking", "jazz music history"]
    in_process, from_disk = copy.recommend(texts, k=5), reloaded.recommend(texts, k=5)
    assert [[i for i, _ in row] for row in in_process] == [[i for i, _ in row] for row in from_disk]
    np.testing.assert_allclose([[s for _, s in row] for row in in_process],
                               [[s for _, s in row] for row in from_disk], atol=1e-5)


def test_update_resumes_from_its_checkpoint(trained, tmp_path) -> None:
    copy = Recommender.load(trained.save(tmp_path / "model"), encoder=make_tiny_encoder())
    copy.update(_new_events(), tiny_interactions(), epochs=1, checkpoint_dir=tmp_path / "ckpt")
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-1")
    copy.update(_new_events(), tiny_interactions(), epochs=2, checkpoint_dir=tmp_path / "ckpt")
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-3")


def test_update_rejects_unknown_items_and_no_positive_events(trained) -> None:
    unknown = pd.DataFrame([{"user_id": "u1", "item_id": "space-99", "timestamp": 1_800_000_000}])
    message = "new events: column 'item_id' has 1 value not in the item catalog.*'space-99'"
    with pytest.raises(SchemaError, match=message):
        trained.update(unknown, tiny_interactions())
    only_dislikes = _new_events().tail(1)
    with pytest.raises(ValueError, match="nothing to train on"):
        trained.update(only_dislikes, tiny_interactions())
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        trained.update(_new_events(), tiny_interactions(), epochs=0)


def test_bag_of_words_items_need_no_encoder() -> None:
    config = _config(**{"model.item_text_encoder": "bag_of_words", "train.epochs": 2})
    recommender = Recommender.train(
        tiny_items(per_topic=8), tiny_interactions(), config, encoder=make_tiny_encoder(), verbose=False
    )
    updated = recommender.add_items(pd.DataFrame([NEW_ITEM]))
    assert updated.catalog.text_embeddings is None and updated.catalog.texts[-1].startswith(NEW_ITEM["title"])
    assert "space-new" in _top_ids(updated, SPACE_TEXT)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tfrecs-llm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_options_all_have_help() -> None:
    args = _parse("update", "--model", "m", "--events-db", "e", "--interactions", "i", "--name", "n")
    assert (args.epochs, args.since_event_id, args.base_path, args.run) == (1, None, "saved_models", run_update)
    assert _parse("add-items", "new.csv", "--model", "m", "--name", "n").run is run_add_items
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        assert all(action.help for action in sub._actions), name


def test_cli_user_errors_are_one_paragraph_before_any_model_loads(tmp_path) -> None:
    common = ["--model", str(tmp_path / "no_model"), "--name", "n"]
    with pytest.raises(FileNotFoundError, match="new.csv: file not found"):
        run_add_items(_parse("add-items", str(tmp_path / "new.csv"), *common))
    update_args = ["update", *common, "--interactions", "i.csv", "--events-db"]
    with pytest.raises(FileNotFoundError, match="events.sqlite does not exist"):
        run_update(_parse(*update_args, str(tmp_path / "events.sqlite")))
    (tmp_path / "notes.txt").write_text("not a database, but long enough to have a header page " * 20)
    with pytest.raises(ValueError, match="notes.txt is not a feedback log"):
        run_update(_parse(*update_args, str(tmp_path / "notes.txt")))
    with pytest.raises(ValueError, match="--since-event-id must be >= 0"):
        run_update(_parse(*update_args, str(tmp_path / "notes.txt"), "--since-event-id", "-1"))


def test_update_reads_the_feedback_from_postgres(tmp_path, postgres_url, capsys) -> None:
    from tfrecs_llm.data.events import Event
    from tfrecs_llm.serving.event_logs import open_event_log

    log = open_event_log(postgres_url)
    log.append([Event("u1", "space-1", "like", 10.0), Event("u1", "space-2", "like", 11.0)])
    log.close()
    args = ["update", "--model", str(tmp_path / "no_model"), "--name", "n", "--interactions", "i.csv",
            "--events-db", postgres_url]
    assert run_update(_parse(*args, "--since-event-id", "2")) == 0
    printed = capsys.readouterr().out
    assert f"no new events in {postgres_url} after event id 2" in printed and "last event id: 2" in printed
    with pytest.raises(FileNotFoundError, match="no_model is not a saved tfrecs_llm model"):
        run_update(_parse(*args))  # two events to fold in, but no model to fold them into
    with pytest.raises(ConnectionError, match="--events-db: cannot connect to the event database"):
        run_update(_parse(*args[:-1], "postgresql://nobody@127.0.0.1:9/none", "--since-event-id", "0"))
