"""The REST server: TF Serving's predict/status/metadata JSON, errors, limits, feedback, swaps."""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.unit.test_model_manager import TEXTS, exported_tiny_model, publish
from tests.unit.tiny_data import tiny_items
from tfrecs_llm.export.warmup import write_warmup_requests
from tfrecs_llm.serving.event_log import EventLog
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.limits import RequestLimits
from tfrecs_llm.serving.rest import TRUNCATED_HEADER, VERSION_HEADER, create_app

TITLES = dict(zip(tiny_items(per_topic=30)["item_id"], tiny_items(per_topic=30)["title"]))


@contextlib.contextmanager
def running_server(app: FastAPI) -> Iterator[str]:
    """Runs ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("served")
    publish(root / "tiny", 1, exported_tiny_model(), lambda d: write_warmup_requests(d, "tiny", TEXTS))
    manager = ModelManager(root / "tiny", "tiny")
    manager.poll_once()
    with EventLog(root / "events.sqlite") as log:
        limits = RequestLimits(max_body_bytes=20_000, max_batch_size=8, max_text_chars=200, max_exclusions=4)
        yield SimpleNamespace(http=TestClient(create_app(manager, log, limits)), manager=manager, log=log)


def _predict(served: SimpleNamespace, body: dict, path: str = "/v1/models/tiny:predict") -> dict:
    response = served.http.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers[VERSION_HEADER] == "1"
    return response.json()


def test_row_and_columnar_formats_match_the_model(served) -> None:
    rows = _predict(served, {"instances": TEXTS})["predictions"]
    assert [set(row) for row in rows] == [{"item_ids", "scores", "reasons"}] * 3
    assert rows == _predict(served, {"instances": [{"user_text": t} for t in TEXTS]})["predictions"]
    columns = _predict(served, {"inputs": TEXTS})["outputs"]
    named = {"signature_name": "serving_default", "inputs": {"user_text": TEXTS}}
    assert columns == _predict(served, named)["outputs"]
    expected = served.manager.get("tiny").run("serving_default", {"user_text": np.array(TEXTS, dtype=object)})
    assert columns["item_ids"] == [[i.decode() for i in row] for row in expected["item_ids"]]
    assert columns["item_ids"] == [row["item_ids"] for row in rows]
    np.testing.assert_allclose(columns["scores"], expected["scores"], rtol=1e-6)


def test_exclusions_in_row_objects_and_columnar_inputs(served) -> None:
    top = _predict(served, {"instances": TEXTS[:1]})["predictions"][0]["item_ids"]
    body = {
        "signature_name": "recommend_with_exclusions",
        "instances": [
            {"user_text": TEXTS[0], "exclude_item_ids": top[:2]},
            {"user_text": TEXTS[1], "exclude_item_ids": ["", ""]},
        ],
    }
    rows = _predict(served, body)["predictions"]
    assert not set(top[:2]) & set(rows[0]["item_ids"]) and rows[0]["item_ids"][:3] == top[2:]
    inputs = {"user_text": TEXTS[:1], "exclude_item_ids": [top[:2]]}
    columnar = {"signature_name": "recommend_with_exclusions", "inputs": inputs}
    assert _predict(served, columnar)["outputs"]["item_ids"] == [rows[0]["item_ids"]]


def test_a_single_output_is_written_without_its_name(served) -> None:
    rows = _predict(served, {"signature_name": "embed_query", "instances": TEXTS})["predictions"]
    columns = _predict(served, {"signature_name": "embed_query", "inputs": TEXTS})["outputs"]
    assert len(rows) == 3 and all(isinstance(v, float) for v in rows[0])
    np.testing.assert_allclose(rows, columns, rtol=1e-6)


def test_model_status_and_metadata(served) -> None:
    ok = {"error_code": "OK", "error_message": ""}
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": ok}]}
    assert served.http.get("/v1/models/tiny").json() == expected
    assert served.http.get("/v1/models/tiny/versions/1").json() == expected
    metadata = served.http.get("/v1/models/tiny/metadata").json()
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "recommend_with_exclusions", "embed_query"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["user_text"]["dtype"] == "DT_STRING"
    batch_by_k = [{"size": "-1", "name": ""}, {"size": "5", "name": ""}]
    assert default["outputs"]["scores"]["tensor_shape"]["dim"] == batch_by_k
    assert served.http.get("/v1/models/tiny/versions/1/metadata").json() == metadata


_EXCLUDE = '"signature_name": "recommend_with_exclusions"'


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "JSON Parse error"),
        (b"", "The document is empty"),
        (b'["a"]', "Is not object"),
        (b'{"instances": ["a"], "inputs": ["a"]}', "only one of 'inputs' or 'instances'"),
        (b'{"signature_name": 3, "instances": ["a"]}', "'signature_name' key must be a string"),
        (b'{"instances": []}', "No values in 'instances'"),
        (b'{"texts": ["a"]}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [1, 2]}', "Type: Number is not of expected type: string"),
        (b'{"instances": [["a"]]}', "the signature expects rank 1"),
        (b'{"instances": ["a", {"user_text": "b"}]}', "Expecting value/list at item 1"),
        (b'{"signature_name": "nope", "instances": ["a"]}', 'signature name: "nope" not found'),
        (b"{" + _EXCLUDE.encode() + b', "instances": ["a"]}', "expecting list of objects"),
        (b"{" + _EXCLUDE.encode() + b', "instances": [{"user_text": "a"}]}', "keys must be equal to"),
        (
            b"{" + _EXCLUDE.encode() + b', "instances": [{"user_text": "a", "exclude_item_ids": ["x"]},'
            b' {"user_text": "b", "exclude_item_ids": ["x", "y"]}]}',
            "lists must be rectangular",
        ),
        (b"{" + _EXCLUDE.encode() + b', "inputs": {"user_text": ["a"]}}', "Missing named input: exclude_item_ids"),
        (b'{"inputs": {"user_text": ["a"], "k": [3]}}', "unknown input(s) ['k']"),
    ],
)
def test_malformed_requests_get_400_with_the_reason(served, body, message) -> None:
    response = served.http.post("/v1/models/tiny:predict", content=body)
    assert response.status_code == 400
    assert list(response.json()) == ["error"] and message in response.json()["error"]


def test_unknown_models_versions_and_routes_get_404(served) -> None:
    cases = [
        ("post", "/v1/models/nope:predict", "Servable not found for request: Latest(nope)"),
        ("post", "/v1/models/tiny/versions/9:predict", "Servable not found for request: Specific(tiny, 9)"),
        ("get", "/v1/models/nope", "Could not find any versions of model nope"),
        ("get", "/v1/models/tiny/versions/9/metadata", "Servable not found for request: Specific(tiny, 9)"),
        ("get", "/v2/anything", "Malformed request: GET /v2/anything"),
    ]
    for method, path, message in cases:
        response = getattr(served.http, method)(path, **({"json": {"instances": ["a"]}} if method == "post" else {}))
        assert (response.status_code, response.json()) == (404, {"error": message})
    assert served.http.get("/v1/models/tiny/versions/one").status_code == 400


def test_body_size_and_batch_size_limits(served) -> None:
    response = served.http.post("/v1/models/tiny:predict", json={"instances": ["word " * 5000]})
    assert response.status_code == 413 and "exceeds the limit of 20000 bytes" in response.json()["error"]
    response = served.http.post("/v1/models/tiny:predict", json={"instances": ["a"] * 9})
    assert response.status_code == 400 and "batch of 9 exceeds the limit of 8" in response.json()["error"]


def test_exclusion_lists_over_the_limit_get_400_naming_the_input(served) -> None:
    body = {"signature_name": "recommend_with_exclusions",
            "inputs": {"user_text": ["a"], "exclude_item_ids": [["space-1"] * 5]}}
    response = served.http.post("/v1/models/tiny:predict", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "input 'exclude_item_ids': exclusion list length of 5 exceeds the limit of 4 per request"
    }
    body["inputs"]["exclude_item_ids"] = [["space-1"] * 4]
    assert served.http.post("/v1/models/tiny:predict", json=body).status_code == 200


def test_a_user_with_a_long_history_excludes_only_the_most_recent_items(served, monkeypatch) -> None:
    seen = [f"music-{i}" for i in range(10)]
    events = [{"user_id": "carol", "item_id": item, "type": "view", "timestamp": 1_700_000_000 + i}
              for i, item in enumerate(seen)]
    for start in (0, 5):  # max_batch_size=8 events per request
        assert served.http.post("/v1/feedback", json={"events": events[start : start + 5]}).status_code == 200
    model = served.manager.get("tiny")
    sent: list[dict] = []
    run = model.run
    monkeypatch.setattr(model, "run", lambda signature, inputs: sent.append(inputs) or run(signature, inputs))
    answer = served.http.post("/v1/users/carol:recommend")
    assert answer.status_code == 200
    # max_exclusions=4: the four newest items are excluded, newest first.
    assert sent[0]["exclude_item_ids"].tolist() == [seen[:-5:-1]]
    recommended = {r["item_id"] for r in answer.json()["recommendations"]}
    assert not recommended & set(seen[-4:]) and len(recommended) == 5


def test_unexpected_errors_are_json_500s() -> None:
    class BrokenManager:
        model_name = "tiny"

        def get(self, name, version=None):
            raise RuntimeError("disk on fire")

    http = TestClient(create_app(BrokenManager()), raise_server_exceptions=False)
    response = http.post("/v1/models/tiny:predict", json={"instances": ["a"]})
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "internal server error (the server log has the details)"}


def test_empty_text_is_answered_and_long_text_truncated_with_a_header(served) -> None:
    response = served.http.post("/v1/models/tiny:predict", json={"instances": ["", "space " * 100, "jazz"]})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3
    assert response.headers[TRUNCATED_HEADER] == "1"
    assert TRUNCATED_HEADER not in served.http.post("/v1/models/tiny:predict", json={"instances": ["a"]}).headers


def test_feedback_is_validated_against_the_catalog_and_stored(served) -> None:
    before = served.log.count()
    event = {"user_id": "alice", "item_id": "space-1", "type": "view", "timestamp": "2024-05-01T10:00:00Z"}
    assert served.http.post("/v1/feedback", json=event).json()["accepted"] == 1
    batch = {"events": [{**event, "type": "like"}, {**event, "item_id": "music-2", "timestamp": 1714557600}]}
    ids = served.http.post("/v1/feedback", json=batch).json()["event_ids"]
    assert len(ids) == 2 and ids[0] < ids[1]
    rejected = [
        ({**event, "item_id": "nope-1"}, "event 0: unknown item_id 'nope-1'"),
        ({**event, "type": "share"}, "'type' must be one of"),
        ({**event, "timestamp": "yesterday"}, "'timestamp' 'yesterday' cannot be parsed"),
        ({**event, "rating": 5}, "unknown field(s) ['rating']"),
        ({**event, "user_id": ""}, "'user_id' must be a non-empty string"),
        ({"events": [event, {**event, "item_id": "nope-2"}]}, "event 1: unknown item_id 'nope-2'"),
        ({"events": []}, "'events' must be a non-empty list"),
    ]
    for body, message in rejected:
        response = served.http.post("/v1/feedback", json=body)
        assert response.status_code == 400 and message in response.json()["error"], response.text
    assert served.log.count() == before + 3  # a batch with one bad event stores nothing


def test_feedback_changes_the_next_recommendation(served) -> None:
    before = served.http.post("/v1/users/bob:recommend").json()
    assert before["user_text"] == "" and len(before["recommendations"]) == 5
    liked, disliked = ["cooking-1", "cooking-2", "cooking-3"], before["recommendations"][0]["item_id"]
    events = [
        {"user_id": "bob", "item_id": item, "type": "like", "timestamp": 1_700_000_000 + i}
        for i, item in enumerate(liked)
    ]
    events.append({"user_id": "bob", "item_id": disliked, "type": "dislike", "timestamp": 1_700_000_100})
    assert served.http.post("/v1/feedback", json={"events": events}).status_code == 200

    after = served.http.post("/v1/users/bob:recommend").json()
    assert after["user_text"] == " ; ".join(TITLES[item] for item in reversed(liked))  # newest first, no dislike
    recommended = [r["item_id"] for r in after["recommendations"]]
    assert recommended != [r["item_id"] for r in before["recommendations"]]
    assert not set(recommended) & {*liked, disliked}
    assert all(r["title"] == TITLES[r["item_id"]] for r in after["recommendations"])
    with_text = served.http.post("/v1/users/bob:recommend", json={"free_text": "jazz"}).json()
    assert with_text["user_text"].startswith("jazz ; ")
    response = served.http.post("/v1/users/bob:recommend", json={"free_text": 3})
    assert response.status_code == 400 and "'free_text' must be a string" in response.json()["error"]


def _corrupt_graph(folder: Path) -> None:
    (folder / "saved_model.pb").write_bytes(b"garbage")


def test_version_switch_under_32_concurrent_clients_fails_no_request(tmp_path) -> None:
    publish(tmp_path / "tiny", 1, exported_tiny_model())
    manager = ModelManager(tmp_path / "tiny", "tiny", poll_seconds=0.05).start()
    seen: collections.Counter = collections.Counter()
    failures: list[str] = []
    stop = threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v1/models/tiny:predict", json={"instances": TEXTS})
                    assert response.status_code == 200 and len(response.json()["predictions"]) == 3, response.text
                    seen[response.headers[VERSION_HEADER]] += 1
                except Exception as error:  # collected, so the test reports every failure
                    failures.append(repr(error))

    def wait_until(condition, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline and not failures:
            time.sleep(0.05)

    try:
        with running_server(create_app(manager)) as url:
            threads = [threading.Thread(target=hammer, args=(url,)) for _ in range(32)]
            for thread in threads:
                thread.start()
            wait_until(lambda: seen["1"] >= 8)
            publish(tmp_path / "tiny", 2, exported_tiny_model())
            manager.wait_for_version(2, timeout=120)
            wait_until(lambda: seen["2"] >= 8)
            publish(tmp_path / "tiny", 3, exported_tiny_model(), _corrupt_graph)
            time.sleep(1.0)  # many polls while requests keep flowing
            stop.set()
            for thread in threads:
                thread.join()
    finally:
        stop.set()
        manager.stop()
    assert failures == []
    print(f"32 clients: {sum(seen.values())} requests, by version {dict(seen)}, 0 failed")
    assert seen["1"] >= 8 and seen["2"] >= 8 and "3" not in seen
    assert {s.version: s.state for s in manager.status("tiny")} == {1: "END", 2: "AVAILABLE", 3: "END"}
