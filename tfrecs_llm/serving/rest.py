"""TF Serving's REST API (predict, model status, metadata) plus feedback and per-user recommend.

Requests and responses follow TF Serving's JSON (row ``instances`` -> ``predictions``, columnar
``inputs`` -> ``outputs``, errors ``{"error": ...}``), so a client written against this local
server works against TF Serving. ``POST /v1/feedback`` and ``POST /v1/users/{id}:recommend`` are
our own: the local server plays the feature service that builds user texts from the event log.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from tensorflow_serving.apis import get_model_status_pb2

from tfrecs_llm.data.events import NEGATIVE_EVENT_TYPES, parse_events
from tfrecs_llm.serving.event_logs import EventStore
from tfrecs_llm.serving.errors import InvalidRequest, ServingError
from tfrecs_llm.serving.limits import EXCLUDE_INPUT, HISTORY_INPUT, TEXT_INPUT, RequestLimits
from tfrecs_llm.serving.loaded_version import DEFAULT_SIGNATURE, LoadedVersion
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.remote import RemoteModelManager, RemoteVersion
from tfrecs_llm.serving.openapi import openapi_document
from tfrecs_llm.serving.rest_json import decimal, from_inputs, from_instances, json_values, short

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

TRUNCATED_HEADER = "X-Tfrecs-Truncated"
"""Present when user texts were cut to ``max_text_chars``: how many were cut."""
VERSION_HEADER = "X-Tfrecs-Model-Version"
"""The model version that answered (TF Serving's JSON has no field for it)."""
_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 413,  # only for request bodies over the limit
    "UNAVAILABLE": 503,
}


def create_app(
    manager: ModelManager | RemoteModelManager, event_log: EventStore | None = None,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """The FastAPI app over a started `ModelManager`, or a `RemoteModelManager` (the model on a
    TF Serving elsewhere); feedback needs an ``event_log`` (SQLite or PostgreSQL)."""
    limits = limits or RequestLimits()
    app = FastAPI(title="tfrecs_llm serving", docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json")
    app.openapi = lambda: openapi_document(app, manager.model_name)  # type: ignore[method-assign]

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, error: ServingError) -> Response:
        return _json({"error": str(error)}, _HTTP_STATUS.get(error.code, 500))

    @app.exception_handler(Exception)
    async def _unexpected_error(request: Request, error: Exception) -> Response:
        # TF Serving answers every error as {"error": ...}; Starlette would send plain text.
        logger.exception("unexpected error answering %s %s", request.method, request.url.path)
        return _json({"error": "internal server error (the server log has the details)"}, 500)

    @app.exception_handler(HTTPException)
    async def _routing_error(request: Request, error: HTTPException) -> Response:
        malformed = error.status_code in (404, 405)
        message = f"Malformed request: {request.method} {request.url.path}" if malformed else str(error.detail)
        return _json({"error": message}, error.status_code)

    @app.post("/v1/models/{name}:predict")
    @app.post("/v1/models/{name}/versions/{version}:predict")
    async def predict(name: str, request: Request) -> Response:
        model = manager.get(name, _requested_version(request))
        body = await _read_json(request, limits.max_body_bytes)
        payload, truncated = await run_in_threadpool(_run_predict, model, body, limits)
        return _json(payload, headers=_headers(model, truncated))

    @app.get("/v1/models/{name}")
    @app.get("/v1/models/{name}/versions/{version}")
    async def model_status(name: str, request: Request) -> Response:
        statuses = [status.to_proto() for status in manager.status(name, _requested_version(request))]
        return _json(_proto_dict(get_model_status_pb2.GetModelStatusResponse(model_version_status=statuses)))

    @app.get("/v1/models/{name}/metadata")
    @app.get("/v1/models/{name}/versions/{version}/metadata")
    async def metadata(name: str, request: Request) -> Response:
        model = manager.get(name, _requested_version(request))
        spec = {"name": model.model_name, "signature_name": "", "version": str(model.version)}
        return _json({"model_spec": spec, "metadata": {"signature_def": _proto_dict(model.signature_defs)}})

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        body = await _read_json(request, limits.max_body_bytes)
        log, model = _event_log_and_model(event_log, manager)
        try:
            events = parse_events(body, model.builder.item_titles, limits.max_batch_size)
        except ValueError as error:
            raise InvalidRequest(str(error)) from error
        ids = await run_in_threadpool(_unavailable_on_connection_error, log.append, events)
        return _json({"accepted": len(ids), "event_ids": ids}, headers=_headers(model, 0))

    @app.post("/v1/users/{user_id}:recommend")
    async def recommend(user_id: str, request: Request) -> Response:
        options = await _read_json(request, limits.max_body_bytes, allow_empty=True) or {}
        if not isinstance(options, dict) or set(options) - {"free_text", "exclude_seen"}:
            raise InvalidRequest('the body must be {"free_text": str, "exclude_seen": bool} (both optional)')
        free_text, exclude_seen = options.get("free_text", ""), options.get("exclude_seen", True)
        if not isinstance(free_text, str) or not isinstance(exclude_seen, bool):
            raise InvalidRequest("'free_text' must be a string and 'exclude_seen' a boolean")
        log, model = _event_log_and_model(event_log, manager)
        payload, truncated = await run_in_threadpool(
            _unavailable_on_connection_error, _recommend_user, model, log, user_id, free_text, exclude_seen, limits
        )
        return _json(payload, headers=_headers(model, truncated))

    return app


def _run_predict(model: LoadedVersion | RemoteVersion, body: Any, limits: RequestLimits) -> tuple[dict, int]:
    """A TF Serving predict body -> (response JSON, number of truncated texts)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"JSON Value: {short(body)} Is not object")
    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidRequest("'signature_name' key must be a string value.")
    signature = signature or DEFAULT_SIGNATURE
    specs = model.input_specs(signature)
    if "instances" in body and "inputs" in body:
        raise InvalidRequest("expecting only one of 'inputs' or 'instances' keys to exist")
    if "instances" in body:
        inputs = from_instances(body["instances"], specs)
    elif "inputs" in body:
        inputs = from_inputs(body["inputs"], specs)
    else:
        raise InvalidRequest("Missing 'inputs' or 'instances' key")
    limits.check_inputs(inputs)
    truncated = limits.truncate_texts(inputs)
    outputs = model.run(signature, inputs)
    values = {name: json_values(name, outputs[name]) for name in sorted(outputs)}
    single = next(iter(values.values())) if len(values) == 1 else None
    if "inputs" in body:
        return {"outputs": values if single is None else single}, truncated
    if single is not None:
        return {"predictions": single}, truncated
    rows = len(next(iter(values.values())))
    return {"predictions": [{name: column[i] for name, column in values.items()} for i in range(rows)]}, truncated


def _recommend_user(
    model: LoadedVersion | RemoteVersion, log: EventStore, user_id: str, free_text: str, exclude_seen: bool, limits: RequestLimits
) -> tuple[dict, int]:
    """Builds the user's text from the event log as in training; excludes what they have seen.

    Reads the user's most recent ``max_exclusions + max_history`` events at most (a user with
    millions of events costs no more), and excludes the ``max_exclusions`` most recently seen
    items.
    """
    builder = model.builder
    events = log.user_events(user_id, limit=limits.max_exclusions + limits.max_history)
    text = builder.build(free_text, [e.item_id for e in events if e.type not in NEGATIVE_EVENT_TYPES])
    truncated, text = int(len(text) > limits.max_text_chars), text[: limits.max_text_chars]
    seen = list(dict.fromkeys(e.item_id for e in reversed(events)))[: limits.max_exclusions] if exclude_seen else []
    liked = [e.item_id for e in events if e.type not in NEGATIVE_EVENT_TYPES][-limits.max_history :]
    inputs = {TEXT_INPUT: np.array([text], dtype=object),
              EXCLUDE_INPUT: _one_row(seen), HISTORY_INPUT: _one_row(liked),
              "diversity": np.zeros(1, np.float32)}
    # `recommend` takes the history: a sequential query tower reads it, and reasons cite it.
    outputs = model.run("recommend", inputs)
    reasons = json_values("reasons", outputs["reasons"][0]) if "reasons" in outputs else [""] * len(outputs["scores"][0])
    recommendations = [
        {"item_id": item, "title": builder.item_titles.get(item, ""), "score": decimal(float(score), np.float32),
         "reason": reason}
        for item, score, reason in zip(
            json_values("item_ids", outputs["item_ids"][0]), outputs["scores"][0].tolist(), reasons
        )
        if score != -math.inf  # excluded fillers when too few items remain
    ]
    payload = {"user_id": user_id, "model_version": str(model.version), "user_text": text}
    return {**payload, "recommendations": recommendations}, truncated


def _unavailable_on_connection_error(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)``; an unreachable event database becomes 503 (UNAVAILABLE)."""
    try:
        return function(*args)
    except ConnectionError as error:
        raise ServingError(str(error), "UNAVAILABLE") from error


def _one_row(values: list[str]) -> np.ndarray:
    row = np.empty((1, len(values)), dtype=object)
    row[0, :] = values
    return row


def _event_log_and_model(
    event_log: EventStore | None, manager: ModelManager | RemoteModelManager
) -> tuple[EventStore, LoadedVersion | RemoteVersion]:
    """The event log and the latest version, which must have a catalog (``items.csv``)."""
    if event_log is None:
        raise ServingError("this server runs without an event log; start it with one for feedback", "UNAVAILABLE")
    model = manager.get(manager.model_name)
    if model.builder is None:
        raise ServingError(
            f"version {model.version} of {model.model_name} has no assets.extra/items.csv; feedback "
            "and per-user recommendations need the catalog (re-export the model)",
            "UNAVAILABLE",
        )
    return event_log, model


async def _read_json(request: Request, limit: int, allow_empty: bool = False) -> Any:
    """The JSON body, read up to ``limit`` bytes (413 beyond; NaN and Infinity accepted)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        message = f"request body of {declared} bytes exceeds the limit of {limit} bytes"
        raise ServingError(message, "RESOURCE_EXHAUSTED")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ServingError(f"request body exceeds the limit of {limit} bytes", "RESOURCE_EXHAUSTED")
    if not body.strip():
        if allow_empty:
            return None
        raise InvalidRequest("JSON Parse error: The document is empty")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidRequest(f"JSON Parse error: {error}") from error


def _requested_version(request: Request) -> int | None:
    """The ``/versions/<v>`` of the URL, or None for the latest."""
    text = request.path_params.get("version")
    if text is not None and not text.isdigit():
        raise InvalidRequest(f"a version must be a non-negative integer, got {text!r}")
    return None if text is None else int(text)


def _headers(model: LoadedVersion | RemoteVersion, truncated: int) -> dict[str, str]:
    return {VERSION_HEADER: str(model.version), **({TRUNCATED_HEADER: str(truncated)} if truncated else {})}


def _proto_dict(message: Message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # allow_nan: -inf scores are written as -Infinity, as TF Serving does.
    content = json.dumps(payload, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return Response(content, status_code=status, media_type="application/json", headers=headers)
