"""Request limits shared by the REST and gRPC fronts: every request has a bounded size and memory.

Checked before anything is materialised (for gRPC, from the declared tensor shapes), so that a
small message cannot ask for gigabytes: TensorFlow's ``make_ndarray`` would fill a declared
shape from a single value, and an all-pairs exclusion compare used to grow with the square of
the exclusion list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfrecs_llm.serving.errors import InvalidRequest, ServingError

TEXT_INPUT = "user_text"
EXCLUDE_INPUT = "exclude_item_ids"
HISTORY_INPUT = "history_item_ids"


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry.

    max_body_bytes: REST bodies and gRPC messages larger than this are refused (HTTP 413,
        gRPC RESOURCE_EXHAUSTED).
    max_batch_size: user texts (instances) or feedback events per request (HTTP 400 / gRPC
        INVALID_ARGUMENT beyond).
    max_text_chars: longer user texts are cut to this many characters (REST header
        ``X-Tfrecs-Truncated: <how many texts>``); the tokenizer keeps far fewer anyway.
    max_exclusions: items per row of ``exclude_item_ids`` (400 / INVALID_ARGUMENT beyond);
        ``/v1/users/{id}:recommend`` excludes the user's ``max_exclusions`` most recent items.
    max_history: items per row of ``history_item_ids`` (400 / INVALID_ARGUMENT beyond); the
        user text builder reads at most this many recent events of a user.
    max_dimension: any other dimension a signature leaves open (e.g. an embedding width).
    """

    max_body_bytes: int = 1_048_576
    max_batch_size: int = 256
    max_text_chars: int = 2_000
    max_exclusions: int = 1_000
    max_history: int = 200
    max_dimension: int = 4_096

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch_size", "max_text_chars", "max_exclusions",
                     "max_history", "max_dimension"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def check_shape(self, name: str, shape: Sequence[int]) -> None:
        """Raises ``InvalidRequest`` when the input ``name`` of ``shape`` is over a limit.

        Dimension 0 is the batch; dimension 1 of the exclusion and history inputs is their
        list length; every other dimension is bounded by ``max_dimension``.
        """
        for axis, size in enumerate(shape):
            if size < 0:
                raise InvalidRequest(f"input {name!r}: dimension {axis} has size {size}; sizes must be >= 0")
            limit, what = self._limit(name, axis)
            if size > limit:
                raise InvalidRequest(
                    f"input {name!r}: {what} of {size} exceeds the limit of {limit} per request"
                )

    def _limit(self, name: str, axis: int) -> tuple[int, str]:
        if axis == 0:
            return self.max_batch_size, "batch"
        if axis == 1 and name == EXCLUDE_INPUT:
            return self.max_exclusions, "exclusion list length"
        if axis == 1 and name == HISTORY_INPUT:
            return self.max_history, "history length"
        return self.max_dimension, f"dimension {axis}"

    def check_elements(self, name: str, shape: Sequence[int]) -> None:
        """The element count of ``shape`` within what the per-dimension limits allow."""
        self.check_shape(name, shape)
        count = math.prod(shape)
        limit = self.max_batch_size * max(self.max_exclusions, self.max_history, self.max_dimension)
        if count > limit:
            raise ServingError(f"input {name!r} has {count} elements; at most {limit} allowed", "RESOURCE_EXHAUSTED")

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Every input of a request within the limits (arrays already built from a bounded body)."""
        for name, array in inputs.items():
            self.check_shape(name, np.shape(array))

    def truncate_texts(self, inputs: dict[str, np.ndarray]) -> int:
        """Cuts over-long ``user_text`` values in place; returns how many were cut."""
        texts = inputs.get(TEXT_INPUT)
        if texts is None or texts.dtype != object:
            return 0
        cut = 0
        for index, text in np.ndenumerate(texts):
            if len(text) > self.max_text_chars:
                texts[index] = text[: self.max_text_chars]
                cut += 1
        return cut
