"""TF Serving's REST API (predict, model status, metadata) plus feedback and per-user recommend.

Requests and responses follow TF Serving's JSON (row ``instances`` -> ``predictions``, columnar
``inputs`` -> ``outputs``, errors ``{"error": ...}``), so a client written against this local
server works against TF Serving. ``POST /v1/feedback`` and ``POST /v1/users/{id}:recommend`` are
our own: the local server plays the feature service that builds user texts from the event log.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from fastapi import FastAPI, Request
from fastapi.responses import Response
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from tensorflow_serving.apis import get_model_status_pb2

from tfrecs_llm.data.events import NEGATIVE_EVENT_TYPES, parse_events
from tfrecs_llm.serving.event_log import EventLog
from tfrecs_llm.serving.errors import InvalidRequest, ServingError
from tfrecs_llm.serving.loaded_version import DEFAULT_SIGNATURE, LoadedVersion
from tfrecs_llm.serving.model_manager import ModelManager

TEXT_INPUT = "user_text"
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


@dataclass
class RestLimits:
    """Request limits of the REST server.

    max_body_bytes: larger request bodies are refused with 413.
    max_batch_size: more instances (or feedback events) in one request are refused with 400.
    max_text_chars: longer user texts are cut to this many characters (header
        ``X-Tfrecs-Truncated: <how many texts>``); the tokenizer keeps far fewer anyway.
    """

    max_body_bytes: int = 1_048_576
    max_batch_size: int = 256
    max_text_chars: int = 2_000


def create_app(
    manager: ModelManager, event_log: EventLog | None = None, limits: RestLimits | None = None
) -> FastAPI:
    """The FastAPI app over a started `ModelManager` (feedback needs an ``event_log``)."""
    limits = limits or RestLimits()
    app = FastAPI(title="tfrecs_llm serving", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ServingError)
    async def _serving_error(request: Request, error: ServingError) -> Response:
        return _json({"error": str(error)}, _HTTP_STATUS.get(error.code, 500))

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
        ids = await run_in_threadpool(log.append, events)
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
            _recommend_user, model, log, user_id, free_text, exclude_seen, limits.max_text_chars
        )
        return _json(payload, headers=_headers(model, truncated))

    return app


def _run_predict(model: LoadedVersion, body: Any, limits: RestLimits) -> tuple[dict, int]:
    """A TF Serving predict body -> (response JSON, number of truncated texts)."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"JSON Value: {_short(body)} Is not object")
    signature = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidRequest("'signature_name' key must be a string value.")
    signature = signature or DEFAULT_SIGNATURE
    specs = model.input_specs(signature)
    if "instances" in body and "inputs" in body:
        raise InvalidRequest("expecting only one of 'inputs' or 'instances' keys to exist")
    if "instances" in body:
        inputs = _from_instances(body["instances"], specs)
    elif "inputs" in body:
        inputs = _from_inputs(body["inputs"], specs)
    else:
        raise InvalidRequest("Missing 'inputs' or 'instances' key")
    batch = max((len(array) for array in inputs.values() if array.ndim), default=1)
    if batch > limits.max_batch_size:
        raise InvalidRequest(f"batch of {batch} exceeds the limit of {limits.max_batch_size} per request")
    truncated = _truncate(inputs, limits.max_text_chars)
    outputs = model.run(signature, inputs)
    values = {name: _json_values(name, outputs[name]) for name in sorted(outputs)}
    single = next(iter(values.values())) if len(values) == 1 else None
    if "inputs" in body:
        return {"outputs": values if single is None else single}, truncated
    if single is not None:
        return {"predictions": single}, truncated
    rows = len(next(iter(values.values())))
    return {"predictions": [{name: column[i] for name, column in values.items()} for i in range(rows)]}, truncated


def _from_instances(instances: Any, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise InvalidRequest("Excepting 'instances' to be an list/array")
    if not instances:
        raise InvalidRequest("No values in 'instances' array")
    names = ",".join(sorted(specs))
    as_objects = _is_object(instances[0])
    if not as_objects and len(specs) > 1:
        raise InvalidRequest(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            f"required as per tensorinfo_map: {names}"
        )
    columns: dict[str, list] = {name: [] for name in specs}
    for position, instance in enumerate(instances):
        if as_objects != _is_object(instance):
            expected = "object" if as_objects else "value/list"
            raise InvalidRequest(f"Expecting {expected} at item {position} of input list")
        if not as_objects:
            columns[next(iter(specs))].append(instance)
        elif set(instance) != set(specs):
            raise InvalidRequest(
                f"Failed to process element: {position} of 'instances' list. JSON object: "
                f"{_short(instance)} keys must be equal to: {names}"
            )
        else:
            for name in specs:
                columns[name].append(instance[name])
    return {name: _to_array(values, specs[name], name) for name, values in columns.items()}


def _from_inputs(inputs: Any, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    if not _is_object(inputs):
        if len(specs) > 1:
            raise InvalidRequest(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                f"required as per tensorinfo_map: {','.join(sorted(specs))}"
            )
        inputs = {next(iter(specs)): inputs}
    unknown = sorted(set(inputs) - set(specs))
    if unknown:
        raise InvalidRequest(f"unknown input(s) {unknown}; this signature takes {sorted(specs)}")
    for name in specs:
        if name not in inputs:
            raise InvalidRequest(f"Missing named input: {name} in 'inputs' object.")
    return {name: _to_array(inputs[name], spec, name) for name, spec in specs.items()}


def _to_array(value: Any, spec: tf.TensorSpec, name: str) -> np.ndarray:
    """A dense JSON value (rectangular nested lists) -> an array of the spec's dtype."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    if spec.shape.rank is not None and len(shape) != spec.shape.rank:
        raise InvalidRequest(
            f"input {name!r} has rank {len(shape)} ({_short(value)}); the signature expects rank {spec.shape.rank}"
        )
    leaves: list = []
    _collect(value, shape, 0, leaves, name)
    converted = [_leaf(leaf, spec.dtype, name) for leaf in leaves]
    if spec.dtype == tf.string:
        array = np.empty(len(converted), dtype=object)
        array[:] = converted
        return array.reshape(shape)
    try:
        return np.array(converted, dtype=spec.dtype.as_numpy_dtype).reshape(shape)
    except OverflowError as error:
        raise InvalidRequest(f"input {name!r}: {error}") from error


def _collect(value: Any, shape: list[int], level: int, leaves: list, name: str) -> None:
    """Appends the leaves of ``value`` in row-major order; checks every list has its level's size."""
    if not isinstance(value, list):
        if level != len(shape):
            raise InvalidRequest(f"input {name!r}: value {_short(value)} at depth {level}; lists must be rectangular")
        leaves.append(value)
        return
    if level >= len(shape) or len(value) != shape[level]:
        raise InvalidRequest(
            f"input {name!r}: Encountered list at unexpected size: {len(value)} at level: {level}; "
            'lists must be rectangular (pad string lists such as exclude_item_ids with "")'
        )
    for element in value:
        _collect(element, shape, level + 1, leaves, name)


def _leaf(value: Any, dtype: tf.DType, name: str) -> Any:
    """One JSON scalar checked against ``dtype`` (strings may be ``{"b64": ...}`` objects)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype == tf.string and _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error as error:
            raise InvalidRequest(f"input {name!r}: Unable to base64 decode") from error
    if (
        (dtype == tf.string and isinstance(value, str))
        or (dtype == tf.bool and isinstance(value, bool))
        or (dtype.is_floating and number)
        or (dtype.is_integer and number and isinstance(value, int))
    ):
        return value
    kind = {str: "String", bool: "Boolean", dict: "Object", type(None): "Null"}.get(type(value), "Number")
    raise InvalidRequest(
        f"input {name!r}: JSON Value: {_short(value)} Type: {kind} is not of expected type: {dtype.name}"
    )


def _truncate(inputs: dict[str, np.ndarray], max_chars: int) -> int:
    """Cuts over-long user texts in place; returns how many were cut."""
    texts = inputs.get(TEXT_INPUT, np.empty(0))
    too_long = [i for i, text in np.ndenumerate(texts) if texts.dtype == object and len(text) > max_chars]
    for index in too_long:
        texts[index] = texts[index][:max_chars]
    return len(too_long)


def _json_values(name: str, array: np.ndarray) -> Any:
    """An output as TF Serving writes it (floats as its WriteDecimal, ``*_bytes`` as b64)."""
    flat = array.ravel().tolist()
    if array.dtype.kind == "f":
        flat = [_decimal(value, array.dtype.type) for value in flat]
    elif array.dtype.kind in "OS" and name.endswith("_bytes"):
        flat = [{"b64": base64.b64encode(value).decode("ascii")} for value in flat]
    elif array.dtype.kind in "OS":
        flat = [value.decode("utf-8", "replace") for value in flat]
    result = np.empty(len(flat), dtype=object)
    result[:] = flat
    return result.reshape(array.shape).tolist()


def _decimal(value: float, dtype: type) -> float:
    """Six significant digits unless they do not round-trip, then full precision (as TF Serving)."""
    if not math.isfinite(value):
        return value
    text = f"{value:g}"
    if dtype(float(text)) != dtype(value):
        text = f"{value:.{9 if dtype == np.float32 else 17}g}"
    return float(text)


def _recommend_user(
    model: LoadedVersion, log: EventLog, user_id: str, free_text: str, exclude_seen: bool, max_chars: int
) -> tuple[dict, int]:
    """Builds the user's text from the event log as in training; excludes what they have seen."""
    builder = model.builder
    events = log.user_events(user_id)
    text = builder.build(free_text, [e.item_id for e in events if e.type not in NEGATIVE_EVENT_TYPES])
    truncated, text = int(len(text) > max_chars), text[:max_chars]
    seen = list(dict.fromkeys(e.item_id for e in events)) if exclude_seen else []
    inputs = {TEXT_INPUT: np.array([text], dtype=object)}
    if seen:
        inputs["exclude_item_ids"] = np.empty((1, len(seen)), dtype=object)
        inputs["exclude_item_ids"][0, :] = seen
    outputs = model.run("recommend_with_exclusions" if seen else DEFAULT_SIGNATURE, inputs)
    recommendations = [
        {"item_id": item, "title": builder.item_titles.get(item, ""), "score": _decimal(float(score), np.float32)}
        for item, score in zip(_json_values("item_ids", outputs["item_ids"][0]), outputs["scores"][0].tolist())
        if score != -math.inf  # excluded fillers when too few items remain
    ]
    payload = {"user_id": user_id, "model_version": str(model.version), "user_text": text}
    return {**payload, "recommendations": recommendations}, truncated


def _event_log_and_model(event_log: EventLog | None, manager: ModelManager) -> tuple[EventLog, LoadedVersion]:
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


def _headers(model: LoadedVersion, truncated: int) -> dict[str, str]:
    return {VERSION_HEADER: str(model.version), **({TRUNCATED_HEADER: str(truncated)} if truncated else {})}


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _proto_dict(message: Message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # allow_nan: -inf scores are written as -Infinity, as TF Serving does.
    content = json.dumps(payload, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return Response(content, status_code=status, media_type="application/json", headers=headers)
