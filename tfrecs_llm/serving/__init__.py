"""Local TF-Serving-compatible serving: version manager, REST + gRPC APIs, feedback log, client.

``serve`` runs what ``tfrecs-llm serve`` starts. Submodules load lazily, so importing the client
does not import TensorFlow.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tfrecs_llm.export.batching_config import BatchingParameters
    from tfrecs_llm.serving.limits import RequestLimits

logger = logging.getLogger(__name__)

_LAZY = {
    "Client": "tfrecs_llm.serving.client",
    "ServingRequestError": "tfrecs_llm.serving.client",
    "EventLog": "tfrecs_llm.serving.event_log",
    "PostgresEventLog": "tfrecs_llm.serving.event_log_postgres",
    "open_event_log": "tfrecs_llm.serving.event_logs",
    "RemoteModelManager": "tfrecs_llm.serving.remote",
    "ModelManager": "tfrecs_llm.serving.model_manager",
    "RequestLimits": "tfrecs_llm.serving.limits",
    "create_app": "tfrecs_llm.serving.rest",
    "start_grpc_server": "tfrecs_llm.serving.grpc_service",
}

__all__ = sorted(_LAZY) + ["serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrecs_llm.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def serve(
    model_base_path: str | Path,
    model_name: str,
    host: str = "127.0.0.1",
    rest_port: int = 8501,
    grpc_port: int | None = None,
    poll_seconds: float = 2.0,
    keep_versions: int | None = None,
    keep_previous_loaded: bool = False,
    event_log_path: str | Path | None = None,
    limits: "RequestLimits | None" = None,
    log_level: str = "info",
    query_cache_size: int = 1024,
    batching: "BatchingParameters | None" = None,
    model_server: str | None = None,
    model_server_timeout: float = 10.0,
) -> None:
    """Serves ``model_base_path`` (the folder holding the integer version folders, as TF Serving's
    ``--model_base_path``) until interrupted: REST on ``rest_port``, gRPC on ``grpc_port`` if set.

    New versions are picked up every ``poll_seconds``; ``keep_versions`` (if set) deletes older
    version folders; the query embeddings of the last ``query_cache_size`` distinct user texts are
    cached (0: off); ``batching`` runs concurrent requests as batches (``tfrecs_llm.serving.
    batching``). Feedback goes to ``event_log_path``: a SQLite file (default
    ``<model_base_path>/events.sqlite``; TF Serving ignores non-numeric entries there) or a
    ``postgresql://user@host:port/db`` URL, which several fronts can share.

    Remote model mode: with ``model_server`` (``grpc://HOST:PORT`` of a TF Serving, or of another
    ``tfrecs-llm serve``), no model is loaded here; predictions are asked of that server (each
    call waits up to ``model_server_timeout`` s, UNAVAILABLE is retried twice, then answered 503)
    and ``model_base_path`` is only read for the served version's catalog (the same folder the
    model server loads, mounted read-only). Version management (``keep_versions``, batching, the
    query cache, gRPC) is then the model server's.
    The endpoints have no authentication: keep the default loopback ``host`` unless a proxy in
    front of the server authenticates requests.

    Example::

        from tfrecs_llm.serving import Client, serve
        serve("saved_models/demo", "demo", rest_port=8501)    # blocks; `tfrecs-llm serve` does this
        # elsewhere:
        with Client(model_name="demo", rest_url="http://127.0.0.1:8501") as client:
            client.predict(["I love jazz records"])           # [(item_ids, scores)] per text
    """
    import uvicorn

    from tfrecs_llm.serving.event_logs import open_event_log
    from tfrecs_llm.serving.grpc_service import start_grpc_server
    from tfrecs_llm.serving.model_manager import ModelManager
    from tfrecs_llm.serving.remote import RemoteModelManager, grpc_target
    from tfrecs_llm.serving.rest import create_app

    if not _is_loopback(host):
        logger.warning("binding %s: the endpoints are reachable from the network without authentication", host)
    if model_server is not None:
        local_only = {"grpc_port": grpc_port, "keep_versions": keep_versions, "batching": batching}
        given = sorted(name for name, value in local_only.items() if value is not None)
        if given:
            raise ValueError(f"{', '.join(given)}: the model server's business in remote mode (--model-server)")
        manager = RemoteModelManager(
            grpc_target(model_server), model_name, model_base_path, poll_seconds, model_server_timeout
        )
    else:
        manager = ModelManager(
            model_base_path, model_name, poll_seconds, keep_versions, keep_previous_loaded, query_cache_size, batching
        )
    event_log = open_event_log(event_log_path or Path(model_base_path) / "events.sqlite")
    grpc_server = None
    try:
        manager.start()
        if grpc_port is not None:
            grpc_server, bound = start_grpc_server(manager, grpc_port, host, limits=limits)
            logger.info("gRPC PredictionService on %s:%d", host, bound)
        uvicorn.run(create_app(manager, event_log, limits), host=host, port=rest_port, log_level=log_level)
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=2).wait()
        manager.stop()
        event_log.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
