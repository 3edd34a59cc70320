"""Live updates end to end: a server on version 1 takes feedback, `tfrecs-llm update` publishes
version 2 and `tfrecs-llm add-items` version 3, and the server switches to each without restart.

The tiny random BERT is saved as a local keras-hub preset, so the CLI loads the model from disk
exactly as it would load a real checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.test_serving_rest import running_server
from tests.unit.tiny_data import NEW_ITEM, SPACE_TEXT, tiny_interactions, tiny_items
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.cli.updates import add_parser
from tfrecs_llm.config import Config
from tfrecs_llm.export.layout import versions
from tfrecs_llm.export.predict import predict_saved_model
from tfrecs_llm.serving.event_log import EventLog
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.rest import VERSION_HEADER, create_app

pytestmark = pytest.mark.integration



def _run_cli(*argv: str) -> str:
    """Runs an update command in this process; returns what it printed.

    (Not capsys: uvicorn's logging setup would close pytest's captured stderr behind capsys.)
    """
    parser = argparse.ArgumentParser(prog="tfrecs-llm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert args.run(args) == 0
    return printed.getvalue()


def _wait_until_served(http: httpx.Client, version: int, timeout: float = 120) -> dict[str, str]:
    """Polls the model status endpoint until ``version`` is AVAILABLE; returns version -> state."""
    deadline = time.monotonic() + timeout
    while True:
        states = {s["version"]: s["state"] for s in http.get("/v1/models/tiny").json()["model_version_status"]}
        if states.get(str(version)) == "AVAILABLE" or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    """A saved tiny model (its BERT as a local preset), the base interactions CSV and version 1."""
    preset = tmp_path / "tiny_bert"
    encoder = make_tiny_encoder()
    encoder.backbone.save_to_preset(str(preset))
    encoder.tokenizer.save_to_preset(str(preset))
    config = Config().with_overrides(
        {"train.epochs": 3, "train.batch_size": 32, "encoder.sequence_length": 32, "encoder.preset": str(preset)}
    )
    tiny_interactions().to_csv(tmp_path / "interactions.csv", index=False)
    recommender = Recommender.train(tiny_items(per_topic=8), tmp_path / "interactions.csv", config, verbose=False)
    recommender.save(tmp_path / "model")
    recommender.export(tmp_path / "saved_models", "tiny", index_kind="brute_force", k=10)
    return tmp_path


def test_feedback_update_and_new_items_reach_a_running_server(deployment) -> None:
    base, model = deployment / "saved_models", deployment / "model"
    manager = ModelManager(base / "tiny", "tiny", poll_seconds=0.2).start()
    cli_model = ["--model", str(model), "--base-path", str(base), "--name", "tiny", "--quiet"]
    update = ["update", *cli_model, "--events-db", str(deployment / "events.sqlite"),
              "--interactions", str(deployment / "interactions.csv")]
    try:
        with EventLog(deployment / "events.sqlite") as log, running_server(create_app(manager, log)) as url, \
                httpx.Client(base_url=url, timeout=60) as http:
            assert _wait_until_served(http, 1) == {"1": "AVAILABLE"}
            before = http.post("/v1/users/carol:recommend").json()
            likes = [
                {"user_id": "carol", "item_id": item, "type": "like", "timestamp": 1_800_000_000 + i}
                for i, item in enumerate(["cooking-1", "cooking-2", "cooking-3"])
            ]
            response = http.post("/v1/feedback", json={"events": likes})
            assert response.status_code == 200 and response.headers[VERSION_HEADER] == "1"
            last_id = response.json()["event_ids"][-1]
            after = http.post("/v1/users/carol:recommend").json()
            assert after["user_text"] and after["recommendations"] != before["recommendations"]

            printed = _run_cli(*update)
            assert f"last event id: {last_id}" in printed and "fine-tuned on 3 new events" in printed
            assert _wait_until_served(http, 2) == {"1": "END", "2": "AVAILABLE"}
            answer = http.post("/v1/users/carol:recommend")
            assert answer.headers[VERSION_HEADER] == "2" and answer.json()["model_version"] == "2"

            # The model remembers what it folded in: the same command again has nothing new.
            again = _run_cli(*update)
            assert f"no new events in {deployment / 'events.sqlite'} after event id {last_id}" in again
            assert "nothing to do" in again and versions(base / "tiny") == [1, 2]

            new_like = {"user_id": "dave", "item_id": "space-new", "type": "like"}
            assert http.post("/v1/feedback", json=new_like).status_code == 400  # not in version 2's catalog
            pd.DataFrame([NEW_ITEM]).to_csv(deployment / "new_items.csv", index=False)
            printed = _run_cli("add-items", str(deployment / "new_items.csv"), *cli_model)
            assert "added 1 items to the catalog of 24" in printed
            assert _wait_until_served(http, 3)["3"] == "AVAILABLE"
            assert http.post("/v1/feedback", json=new_like).status_code == 200
            served = http.post("/v1/users/erin:recommend", json={"free_text": SPACE_TEXT}).json()
            assert served["model_version"] == "3"
            assert "space-new" in [r["item_id"] for r in served["recommendations"]]
    finally:
        manager.stop()
    [exported] = predict_saved_model(base / "tiny" / "3", [SPACE_TEXT])
    assert "space-new" in [item for item, _ in exported]
    reloaded = Recommender.load(model)
    assert len(reloaded.catalog.item_ids) == 25
    assert "space-new" in [item for item, _ in reloaded.recommend([SPACE_TEXT], k=10)[0]]
