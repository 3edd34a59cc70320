"""A client for the predict API of TF Serving (REST or gRPC) and of ``tfrecs-llm serve``.

Only TF Serving's own API is used (columnar REST JSON, PredictionService over gRPC), so the same
calls work against ``tensorflow/serving`` and against the local server. TensorFlow is imported
only for gRPC (tensor protos).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

DEFAULT_SIGNATURE = "serving_default"
EXCLUSIONS_SIGNATURE = "recommend_with_exclusions"
_T = TypeVar("_T")
Prediction = tuple[list[str], list[float]]
"""Item ids and scores of one user text, best first."""


class ServingRequestError(RuntimeError):
    """The server refused a request; ``status`` is the HTTP status or the gRPC code name."""

    def __init__(self, status: int | str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """Predicts with a served model over REST (``rest_url``) or gRPC (``grpc_target``).

    Args:
        model_name: the served model's name.
        rest_url: e.g. ``http://127.0.0.1:8501`` (TF Serving's REST port).
        grpc_target: e.g. ``127.0.0.1:8500`` (TF Serving's gRPC port).
        timeout: seconds per request (connect and answer).
        retries: gRPC calls answered UNAVAILABLE (server down or restarting, a full batch
            queue) are sent again up to this many times, after 0.1 s, 0.2 s, 0.4 s, ...
    """

    def __init__(
        self,
        *,
        model_name: str,
        rest_url: str | None = None,
        grpc_target: str | None = None,
        timeout: float = 10.0,
        retries: int = 0,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if (rest_url is None) == (grpc_target is None):
            raise ValueError(
                "give exactly one of rest_url (e.g. http://127.0.0.1:8501) "
                "or grpc_target (e.g. 127.0.0.1:8500)"
            )
        self.model_name = model_name
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self.grpc_target = grpc_target
        self.timeout = timeout
        self.retries = retries
        self._http: httpx.Client | None = None
        self._channel: Any = None
        if self.rest_url:
            self._http = httpx.Client(base_url=self.rest_url, timeout=timeout)
        else:
            import grpc
            from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

            # A restarted server is found again within 2 s (gRPC's default backoff grows to 120 s).
            options = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]
            self._channel = grpc.insecure_channel(grpc_target, options=options)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
            self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(
        self,
        user_texts: Sequence[str],
        exclude_item_ids: Sequence[Sequence[str]] | None = None,
        signature: str | None = None,
        version: int | None = None,
    ) -> list[Prediction]:
        """Recommendations per user text: ``(item_ids, scores)``, best first.

        ``exclude_item_ids`` (one list per text, any lengths) selects the
        ``recommend_with_exclusions`` signature unless ``signature`` names another; excluded
        items never appear (the ``-inf`` fillers the model returns when too few items remain
        are dropped). ``version`` asks for a specific served version instead of the latest.

        Raises:
            ConnectionError: the server cannot be reached (the message names it).
            TimeoutError: no answer within ``timeout`` seconds.
            ServingRequestError: the server refused the request (with its error text).
        """
        texts = [user_texts] if isinstance(user_texts, str) else list(user_texts)
        inputs: dict[str, list] = {"user_text": texts}
        if exclude_item_ids is not None:
            inputs["exclude_item_ids"] = _padded(exclude_item_ids, len(texts))
        signature = signature or (EXCLUSIONS_SIGNATURE if exclude_item_ids is not None else DEFAULT_SIGNATURE)
        if self._http is not None:
            item_ids, scores = self._predict_rest(inputs, signature, version)
        else:
            item_ids, scores = self._predict_grpc(inputs, signature, version)
        results = []
        for row_ids, row_scores in zip(item_ids, scores):
            kept = [(i, float(s)) for i, s in zip(row_ids, row_scores) if s != -math.inf]
            results.append(([i for i, _ in kept], [s for _, s in kept]))
        return results

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _predict_rest(self, inputs: dict[str, list], signature: str, version: int | None) -> tuple[list, list]:
        assert self._http is not None
        path = f"/v1/models/{quote(self.model_name, safe='')}"
        path += f"/versions/{int(version)}:predict" if version is not None else ":predict"
        url = f"{self.rest_url}{path}"
        try:
            response = self._http.post(path, json={"signature_name": signature, "inputs": inputs})
        except httpx.ConnectError as error:
            raise ConnectionError(f"cannot connect to the model server at {url}: {error}") from error
        except httpx.TimeoutException as error:
            raise TimeoutError(f"no answer from {url} within {self.timeout} s") from error
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text
            raise ServingRequestError(response.status_code, f"{url} answered {response.status_code}: {message}")
        outputs = response.json()["outputs"]
        return outputs["item_ids"], outputs["scores"]

    def predict_arrays(
        self, signature: str, inputs: Mapping[str, Any], version: int | None = None
    ) -> tuple[dict[str, Any], int]:
        """gRPC Predict on named arrays (any signature, any dtypes) -> (named arrays, the version
        that answered). Raises as `predict`."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = int(version)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self._grpc()[0].Predict, request)
        outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
        return outputs, int(response.model_spec.version.value)

    def model_status(self, version: int | None = None) -> list[tuple[int, str]]:
        """gRPC GetModelStatus: ``(version, state)`` of each version (state e.g. AVAILABLE)."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        if version is not None:
            request.model_spec.version.value = int(version)
        response = self._call(self._grpc()[1].GetModelStatus, request)
        state = get_model_status_pb2.ModelVersionStatus.State.Name
        return [(int(s.version), state(s.state)) for s in response.model_version_status]

    def signature_defs(self, version: int | None = None) -> tuple[Any, int]:
        """gRPC GetModelMetadata: (the ``SignatureDefMap``, the version it describes)."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        request.metadata_field.append("signature_def")
        if version is not None:
            request.model_spec.version.value = int(version)
        response = self._call(self._grpc()[0].GetModelMetadata, request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return signature_defs, int(response.model_spec.version.value)

    def _grpc(self) -> tuple[Any, Any]:
        """The PredictionService and ModelService stubs (a REST client has none)."""
        if self._channel is None:
            raise ValueError("this call needs gRPC: create the Client with grpc_target=HOST:PORT")
        return self._stub, self._model_stub

    def _call(self, method: Callable[..., _T], request: Any) -> _T:
        """One gRPC call with ``retries`` on UNAVAILABLE; errors as described in `predict`."""
        import grpc

        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code, details = error.code(), error.details()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(0.1 * 2**attempt)
                    continue
                if code == grpc.StatusCode.UNAVAILABLE:
                    message = f"cannot connect to the model server at {self.grpc_target}: {details}"
                    raise ConnectionError(message) from error
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise TimeoutError(f"no answer from {self.grpc_target} within {self.timeout} s") from error
                message = f"{self.grpc_target} answered {code.name}: {details}"
                raise ServingRequestError(code.name, message) from error
        raise AssertionError("unreachable")

    def _predict_grpc(self, inputs: dict[str, list], signature: str, version: int | None) -> tuple[list, list]:
        import numpy as np

        arrays = {name: np.array(value, dtype=object) for name, value in inputs.items()}
        outputs, _ = self.predict_arrays(signature, arrays, version)
        item_ids = [[i.decode() for i in row] for row in outputs["item_ids"]]
        return item_ids, outputs["scores"].tolist()


def _padded(exclude_item_ids: Sequence[Sequence[str]], batch_size: int) -> list[list[str]]:
    """Rows padded with "" to one width (at least 1), as the exclusion signature expects."""
    if isinstance(exclude_item_ids, str) or any(isinstance(row, str) for row in exclude_item_ids):
        raise TypeError("exclude_item_ids must hold one list of item ids per user text")
    rows = [list(row) for row in exclude_item_ids]
    if len(rows) != batch_size:
        raise ValueError(
            f"exclude_item_ids has {len(rows)} rows but there are {batch_size} user texts; give one list per text"
        )
    width = max([1, *(len(row) for row in rows)])
    return [[str(item) for item in row] + [""] * (width - len(row)) for row in rows]
