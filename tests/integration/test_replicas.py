"""Scale-out serving: two REST fronts in remote model mode over one model server (gRPC) and one
PostgreSQL, all real servers on loopback. Feedback on one replica changes the next answer of the
other; concurrent clients with retries store every acknowledged event exactly once; a model
server that goes away makes the fronts answer 503 (never lose feedback) until it is back."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import psycopg
import pytest

from tests.postgres_server import fresh_database
from tests.unit.test_model_manager import exported_tiny_model, publish
from tests.unit.test_serving_rest import running_server
from tfrecs_llm.serving.event_logs import open_event_log
from tfrecs_llm.serving.grpc_service import start_grpc_server
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.remote import RemoteModelManager, grpc_target
from tfrecs_llm.serving.rest import create_app

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _front(target: str, base: Path, database_url: str) -> Iterator[str]:
    """One replica: its own connection pool and model-server client, as a separate process would."""
    manager = RemoteModelManager(target, "tiny", base, poll_seconds=0.5, timeout=3.0).start()
    log = open_event_log(database_url)
    try:
        with running_server(create_app(manager, log)) as url:
            yield url
    finally:
        manager.stop()
        log.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server) -> Iterator[SimpleNamespace]:
    base = tmp_path_factory.mktemp("replicas") / "tiny"
    publish(base, 1, exported_tiny_model())
    manager = ModelManager(base, "tiny")
    manager.poll_once()
    port = _free_port()
    model_server = SimpleNamespace(grpc=start_grpc_server(manager, port)[0])
    database = fresh_database(postgres_server, "replicas")
    target = f"127.0.0.1:{port}"
    with _front(target, base, database) as a, _front(target, base, database) as b:
        yield SimpleNamespace(a=a, b=b, manager=manager, model_server=model_server, port=port, database=database)
    model_server.grpc.stop(grace=None)


def _feedback(http: httpx.Client, url: str, events: list[dict]) -> httpx.Response:
    return http.post(f"{url}/v1/feedback", json={"events": events})


def _recommend(http: httpx.Client, url: str, user: str) -> httpx.Response:
    return http.post(f"{url}/v1/users/{user}:recommend", json={"exclude_seen": True})


def _stored(database: str) -> dict[str, int]:
    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT client_event_id, count(*) FROM events GROUP BY client_event_id").fetchall()
    return {key: count for key, count in rows if key is not None}


def test_feedback_on_one_replica_changes_the_next_answer_of_the_other(deployment) -> None:
    titles = deployment.manager.get("tiny").builder.item_titles
    liked = ["space-1", "space-2", "space-3"]
    with httpx.Client(timeout=30) as http:
        before = _recommend(http, deployment.b, "carol").json()
        response = _feedback(http, deployment.a, [{"user_id": "carol", "item_id": i, "type": "like"} for i in liked])
        assert response.status_code == 200 and response.json()["accepted"] == 3
        after = _recommend(http, deployment.b, "carol").json()
    assert before["user_text"] == "" and all(titles[i] in after["user_text"] for i in liked)
    assert not {r["item_id"] for r in after["recommendations"]} & set(liked)
    # What a single local server over the same event log answers: the front builds the same request.
    with contextlib.closing(open_event_log(deployment.database)) as log, \
            running_server(create_app(deployment.manager, log)) as local, httpx.Client(timeout=30) as http:
        assert _recommend(http, local, "carol").json() == after


def test_concurrent_clients_with_retries_store_every_acknowledged_event_once(deployment) -> None:
    acknowledged: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 4.0
    keys = itertools.count()

    def client(number: int) -> None:
        replicas = [deployment.a, deployment.b]
        with httpx.Client(timeout=30) as http:
            for request in itertools.count():
                if time.monotonic() > deadline:
                    return
                key = f"c{number}-{next(keys)}"
                event = {"user_id": f"load-{number}", "item_id": "music-1", "type": "view", "client_event_id": key}
                first = _feedback(http, replicas[request % 2], [event])
                # Every third request is sent again to the other replica, as a client retrying
                # after a lost answer would: it must come back with the same event id.
                again = _feedback(http, replicas[(request + 1) % 2], [event]) if request % 3 == 0 else first
                if first.status_code != 200 or again.status_code != 200:
                    failures.append(f"{first.status_code} {again.status_code}: {first.text} {again.text}")
                    continue
                [event_id], [retried_id] = first.json()["event_ids"], again.json()["event_ids"]
                with lock:
                    acknowledged[key] = event_id
                if retried_id != event_id:
                    failures.append(f"{key}: retry stored as {retried_id}, first as {event_id}")
                if request % 5 == 0:  # reads interleaved with the writes, from the other replica
                    answer = _recommend(http, replicas[(request + 1) % 2], f"load-{number}")
                    if answer.status_code != 200:
                        failures.append(f"recommend {answer.status_code}: {answer.text}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(acknowledged) >= 40, "too few requests to say anything; the machine is overloaded"
    stored = {k: v for k, v in _stored(deployment.database).items() if k.startswith("c")}
    assert stored == dict.fromkeys(acknowledged, 1)  # every acknowledged event, exactly once
    assert len(set(acknowledged.values())) == len(acknowledged)


def test_a_stopped_model_server_gets_503_and_loses_no_feedback_then_recovers(deployment) -> None:
    event = {"user_id": "dave", "item_id": "cooking-1", "type": "like", "client_event_id": "down-1"}
    with httpx.Client(timeout=30) as http:
        assert _recommend(http, deployment.a, "dave").status_code == 200
        deployment.model_server.grpc.stop(grace=None)
        try:
            for url in (deployment.a, deployment.b):
                down = _recommend(http, url, "dave")
                assert down.status_code == 503, down.text
                assert f"cannot connect to the model server at 127.0.0.1:{deployment.port}" in down.json()["error"]
            stored = _feedback(http, deployment.b, [event])  # the catalog is local: feedback is kept
            assert stored.status_code == 200, stored.text
        finally:
            deployment.model_server.grpc = start_grpc_server(deployment.manager, deployment.port)[0]
        deadline = time.monotonic() + 30
        while (answer := _recommend(http, deployment.a, "dave")).status_code != 200:
            assert answer.status_code == 503 and time.monotonic() < deadline, answer.text
            time.sleep(0.2)
    assert "cooking-1" not in {r["item_id"] for r in answer.json()["recommendations"]}  # the event counts
    assert _stored(deployment.database)["down-1"] == 1


def test_model_server_addresses_are_checked() -> None:
    assert grpc_target("grpc://tfserving:8500") == "tfserving:8500"
    assert grpc_target("127.0.0.1:8500") == "127.0.0.1:8500"
    for wrong in ("http://host:8501", "grpc://host", "grpc://host:8500/v1/models"):
        with pytest.raises(ValueError, match="must look like grpc://HOST:PORT"):
            grpc_target(wrong)


def test_an_unreachable_event_database_gets_503_and_predict_keeps_working(deployment, tmp_path) -> None:
    from tests.postgres_server import running_postgres

    event = {"user_id": "erin", "item_id": "music-2", "type": "like"}
    with running_postgres("fsync=off") as server:
        database = fresh_database(server, "short_lived")
        manager = RemoteModelManager(f"127.0.0.1:{deployment.port}", "tiny", deployment.manager.model_base_path).start()
        log = open_event_log(database, timeout=2)
        try:
            with running_server(create_app(manager, log)) as url, httpx.Client(timeout=30) as http:
                assert _feedback(http, url, [event]).status_code == 200
                _stop_postgres(server)  # the database goes away; the front stays
                for response in (_feedback(http, url, [event]), _recommend(http, url, "erin")):
                    assert response.status_code == 503, response.text
                    assert "the event database postgresql://tfrecs@127.0.0.1:" in response.json()["error"]
                predict = http.post(f"{url}/v1/models/tiny:predict", json={"instances": ["space rockets"]})
                assert predict.status_code == 200, predict.text
        finally:
            manager.stop()
            log.close()


def _stop_postgres(url: str) -> None:
    """Stops the server at ``url`` the way a crash or a maintenance stop looks to clients."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        data = connection.execute("SHOW data_directory").fetchone()[0]
    from tests.postgres_server import stop_postgres

    stop_postgres(Path(data))
