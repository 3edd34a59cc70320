"""TF Serving's JSON encoding of tensors: request ``instances`` / ``inputs`` -> arrays, and
outputs -> JSON values (floats as TF Serving writes them, ``*_bytes`` outputs as base64)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np
import tensorflow as tf

from tfrecs_llm.serving.errors import InvalidRequest


def from_instances(instances: Any, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
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
                f"{short(instance)} keys must be equal to: {names}"
            )
        else:
            for name in specs:
                columns[name].append(instance[name])
    return {name: _to_array(values, specs[name], name) for name, values in columns.items()}


def from_inputs(inputs: Any, specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
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
            f"input {name!r} has rank {len(shape)} ({short(value)}); the signature expects rank {spec.shape.rank}"
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
            raise InvalidRequest(f"input {name!r}: value {short(value)} at depth {level}; lists must be rectangular")
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
        f"input {name!r}: JSON Value: {short(value)} Type: {kind} is not of expected type: {dtype.name}"
    )


def json_values(name: str, array: np.ndarray) -> Any:
    """An output as TF Serving writes it (floats as its WriteDecimal, ``*_bytes`` as b64)."""
    flat = array.ravel().tolist()
    if array.dtype.kind == "f":
        flat = [decimal(value, array.dtype.type) for value in flat]
    elif array.dtype.kind in "OS" and name.endswith("_bytes"):
        flat = [{"b64": base64.b64encode(value).decode("ascii")} for value in flat]
    elif array.dtype.kind in "OS":
        flat = [value.decode("utf-8", "replace") for value in flat]
    result = np.empty(len(flat), dtype=object)
    result[:] = flat
    return result.reshape(array.shape).tolist()


def decimal(value: float, dtype: type) -> float:
    """Six significant digits unless they do not round-trip, then full precision (as TF Serving)."""
    if not math.isfinite(value):
        return value
    text = f"{value:g}"
    if dtype(float(text)) != dtype(value):
        text = f"{value:.{9 if dtype == np.float32 else 17}g}"
    return float(text)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
