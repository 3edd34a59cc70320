"""Serving errors, each carrying the TF status code TF Serving would answer with."""

from __future__ import annotations


class ServingError(Exception):
    """An error carrying the TF status code name TF Serving would answer with (``code``)."""

    code = "UNKNOWN"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ServableNotFound(ServingError):
    """Unknown model name, or a version that is not served (HTTP 404, gRPC NOT_FOUND)."""

    code = "NOT_FOUND"


class InvalidRequest(ServingError):
    """Inputs that do not match the signature (HTTP 400, gRPC INVALID_ARGUMENT)."""

    code = "INVALID_ARGUMENT"
