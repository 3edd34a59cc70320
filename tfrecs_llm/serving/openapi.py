"""The REST API's request and response bodies as OpenAPI (JSON Schema), served at
``/v1/openapi.json``: what clients can rely on, and what the API is fuzzed from in the tests.

The routes read raw JSON (TF Serving's formats do not map onto one model class), so the bodies
are described here and put into FastAPI's generated document (``app.openapi``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tfrecs_llm.data.events import EVENT_TYPES

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "minLength": 1}},
    "additionalProperties": False,
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_INSTANCE = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {
                "user_text": {"type": "string"},
                "exclude_item_ids": _STRINGS,
                "history_item_ids": _STRINGS,
                "diversity": {"type": "number"},
                "query_embedding": {"type": "array", "items": {"type": "number"}},
            },
        },
    ]
}
PREDICT = {
    "type": "object",
    "properties": {
        "signature_name": {"type": "string"},
        "instances": {"type": "array", "items": _INSTANCE},
        "inputs": {
            "oneOf": [
                _STRINGS,
                {
                    "type": "object",
                    "properties": {
                        "user_text": _STRINGS,
                        "exclude_item_ids": {"type": "array", "items": _STRINGS},
                        "history_item_ids": {"type": "array", "items": _STRINGS},
                        "diversity": {"type": "array", "items": {"type": "number"}},
                    },
                },
            ]
        },
    },
}
_EVENT = {
    "type": "object",
    "required": ["user_id", "item_id", "type"],
    "properties": {
        "user_id": {"type": "string"},
        "item_id": {"type": "string"},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "timestamp": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "client_event_id": {"type": "string"},
    },
    "additionalProperties": False,
}
FEEDBACK = {"oneOf": [_EVENT, {"type": "object", "required": ["events"],
                               "properties": {"events": {"type": "array", "items": _EVENT}}}]}
USER_RECOMMEND = {
    "type": "object",
    "properties": {"free_text": {"type": "string"}, "exclude_seen": {"type": "boolean"}},
    "additionalProperties": False,
}
_PREDICTIONS = {"type": "object", "minProperties": 1, "maxProperties": 1,
                "properties": {"predictions": {}, "outputs": {}}, "additionalProperties": False}
_OBJECT = {"type": "object"}
_BODIES: dict[str, tuple[dict | None, dict, bool]] = {
    ":predict": (PREDICT, _PREDICTIONS, True),
    "/v1/feedback": (FEEDBACK, {"type": "object", "required": ["accepted", "event_ids"]}, True),
    ":recommend": (USER_RECOMMEND, {"type": "object", "required": ["user_id", "recommendations"]}, False),
}
"""Path suffix -> (request body, 200 body, whether the body is required); GETs take none."""


def openapi_document(app: FastAPI, model_name: str) -> dict[str, Any]:
    """The app's OpenAPI document with the bodies above, every error answer as ``ERROR``, and
    the path parameters described (``name`` is the served model's name)."""
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            body, ok, required = next(
                (spec for suffix, spec in _BODIES.items() if path.endswith(suffix)), (None, _OBJECT, False)
            )
            if method == "get":
                body = None
            operation["parameters"] = _path_parameters(path, model_name)
            operation["responses"] = {"200": _json(ok)}
            operation["responses"].update({code: _json(ERROR) for code in ("400", "404", "413", "500", "503")})
            operation.pop("requestBody", None)
            if body is not None:
                operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": body}}}
    document.pop("components", None)
    return document


def _path_parameters(path: str, model_name: str) -> list[dict[str, Any]]:
    schemas = {
        "name": {"type": "string", "enum": [model_name]},
        "version": {"type": "string", "pattern": "^[0-9]{1,3}$"},
        "user_id": {"type": "string", "minLength": 1, "maxLength": 64},
    }
    return [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in schemas.items()
        if "{" + name + "}" in path
    ]


def _json(schema: dict) -> dict:
    return {"description": "JSON", "content": {"application/json": {"schema": schema}}}
