"""Client: REST and gRPC round trips against the local server, errors, timeouts; gRPC services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tests.unit.test_model_manager import TEXTS, exported_tiny_model, publish
from tests.unit.test_serving_rest import running_server
from tfrecs_llm.serving.client import Client, ServingRequestError
from tfrecs_llm.serving.grpc_service import start_grpc_server
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.rest import create_app


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[SimpleNamespace]:
    model_dir = tmp_path_factory.mktemp("client") / "tiny"
    publish(model_dir, 1, exported_tiny_model())
    manager = ModelManager(model_dir, "tiny")
    manager.poll_once()
    grpc_server, port = start_grpc_server(manager, port=0)
    try:
        with running_server(create_app(manager)) as url:
            yield SimpleNamespace(manager=manager, rest_url=url, grpc_target=f"127.0.0.1:{port}")
    finally:
        grpc_server.stop(grace=None)


def _clients(servers: SimpleNamespace, **kwargs) -> list[Client]:
    return [
        Client(model_name="tiny", rest_url=servers.rest_url, **kwargs),
        Client(model_name="tiny", grpc_target=servers.grpc_target, **kwargs),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rest_and_grpc_round_trips_return_what_the_model_returns(servers) -> None:
    expected = servers.manager.get("tiny").run("serving_default", {"user_text": np.array(TEXTS, dtype=object)})
    for client in _clients(servers):
        with client:
            results = client.predict(TEXTS)
            assert results == client.predict(TEXTS, version=1)
        assert [ids for ids, _ in results] == [[i.decode() for i in row] for row in expected["item_ids"]]
        np.testing.assert_allclose([scores for _, scores in results], expected["scores"], rtol=1e-6)


def test_exclusions_of_any_lengths_never_come_back(servers) -> None:
    for client in _clients(servers):
        with client:
            [(top, _)] = client.predict(TEXTS[:1])
            exclude = [top[:3], [], ["space-1"]]
            results = client.predict(TEXTS, exclude_item_ids=exclude)
        assert all(len(ids) == 5 and not set(ids) & set(ex) for (ids, _), ex in zip(results, exclude))
        assert results[0][0][:2] == top[3:]


def test_server_errors_carry_the_server_message(servers) -> None:
    rest, rpc = _clients(servers)
    with rest, rpc:
        with pytest.raises(ServingRequestError, match=r"answered 404: .*Specific\(tiny, 9\)") as error:
            rest.predict(TEXTS, version=9)
        assert error.value.status == 404
        with pytest.raises(ServingRequestError, match=r"answered NOT_FOUND: .*Specific\(tiny, 9\)") as error:
            rpc.predict(TEXTS, version=9)
        assert error.value.status == "NOT_FOUND"
        for client, status in [(rest, 400), (rpc, "INVALID_ARGUMENT")]:
            with pytest.raises(ServingRequestError, match='signature name: "nope" not found') as error:
                client.predict(TEXTS, signature="nope")
            assert error.value.status == status


def test_unreachable_servers_and_timeouts_raise_clear_errors(servers) -> None:
    port = _free_port()
    with Client(model_name="tiny", rest_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        with pytest.raises(ConnectionError, match=f"http://127.0.0.1:{port}/v1/models/tiny:predict"):
            client.predict(TEXTS)
    with Client(model_name="tiny", grpc_target=f"127.0.0.1:{port}", timeout=5) as client:
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
            client.predict(TEXTS)
    for client in _clients(servers, timeout=1e-4):
        with client, pytest.raises(TimeoutError, match="within 0.0001 s"):
            client.predict(TEXTS)


def test_grpc_metadata_and_model_status(servers) -> None:
    with grpc.insecure_channel(servers.grpc_target) as channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "tiny"
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=10)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        assert response.model_spec.version.value == 1
        exclusions = signature_defs.signature_def["recommend_with_exclusions"]
        assert exclusions.inputs["exclude_item_ids"].dtype == tf.string.as_datatype_enum
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "tiny"
        status_response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=10)
        [status] = status_response.model_version_status
        assert (status.version, status.state) == (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)


def test_client_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one of rest_url"):
        Client(model_name="tiny")
    with Client(model_name="tiny", rest_url="http://127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="exclude_item_ids has 1 rows but there are 2 user texts"):
            client.predict(["a", "b"], exclude_item_ids=[["x"]])
        with pytest.raises(TypeError, match="one list of item ids per user text"):
            client.predict(["a"], exclude_item_ids=["x"])


def test_serve_answers_rest_and_grpc_until_interrupted(tmp_path) -> None:
    publish(tmp_path / "tiny", 1, exported_tiny_model())
    rest_port, grpc_port = _free_port(), _free_port()
    code = (
        "import sys\nfrom tfrecs_llm.serving import serve\n"
        f"serve(sys.argv[1], 'tiny', rest_port={rest_port}, grpc_port={grpc_port}, log_level='warning')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "tiny")], env=env, stderr=subprocess.PIPE)
    try:
        rest = Client(model_name="tiny", rest_url=f"http://127.0.0.1:{rest_port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                expected = rest.predict(TEXTS)
                break
            except ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "serve() did not come up"
                time.sleep(0.2)
        with Client(model_name="tiny", grpc_target=f"127.0.0.1:{grpc_port}") as rpc:
            assert [ids for ids, _ in rpc.predict(TEXTS)] == [ids for ids, _ in expected]
        rest.close()
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr.decode()[-3000:]
    assert (tmp_path / "tiny" / "events.sqlite").is_file()
