"""TF Serving's gRPC API over a `ModelManager`: PredictionService (Predict, GetModelMetadata)
and ModelService (GetModelStatus), so gRPC clients of TF Serving work against the local server."""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any, Callable, TypeVar

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfrecs_llm.serving.errors import InvalidRequest, ServingError
from tfrecs_llm.serving.limits import RequestLimits
from tfrecs_llm.serving.loaded_version import DEFAULT_SIGNATURE, LoadedVersion
from tfrecs_llm.serving.model_manager import ModelManager

_T = TypeVar("_T")
_KNOWN_DTYPES = set(types_pb2.DataType.values())
logger = logging.getLogger(__name__)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``: Predict and GetModelMetadata."""

    def __init__(self, manager: ModelManager, limits: RequestLimits | None = None) -> None:
        self.manager = manager
        self.limits = limits or RequestLimits()

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        return _answer(context, lambda: self._predict(request))

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return _answer(context, lambda: self._metadata(request))

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        model = _served(self.manager, request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        specs = model.input_specs(signature)
        inputs = {name: self._to_array(name, proto, specs) for name, proto in request.inputs.items()}
        self.limits.truncate_texts(inputs)
        outputs = model.run(signature, inputs)
        wanted = list(request.output_filter) or list(outputs)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            message = f"output_filter names unknown outputs {unknown}; outputs: {sorted(outputs)}"
            raise ServingError(message, "INVALID_ARGUMENT")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.model_name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = signature
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    def _to_array(self, name: str, proto: tensor_pb2.TensorProto, specs: dict) -> np.ndarray:
        """One input tensor, checked against the signature and the limits from its declared
        shape before anything is allocated (``make_ndarray`` fills a declared shape from a
        single value, so a tiny message can declare gigabytes)."""
        spec = specs.get(name)
        if spec is None:
            raise InvalidRequest(f"unknown input {name!r}; this signature takes {sorted(specs)}")
        if proto.dtype != spec.dtype.as_datatype_enum:
            given = types_pb2.DataType.Name(proto.dtype) if proto.dtype in _KNOWN_DTYPES else str(proto.dtype)
            raise InvalidRequest(f"input {name!r} has dtype {given}; the signature expects {spec.dtype.name}")
        if proto.tensor_shape.unknown_rank:
            raise InvalidRequest(f"input {name!r}: tensor_shape must list its dimensions")
        shape = [dim.size for dim in proto.tensor_shape.dim]
        self.limits.check_elements(name, shape)
        try:
            return tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise InvalidRequest(f"input {name!r}: malformed tensor: {error}") from error

    def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        unsupported = sorted(set(request.metadata_field) - {"signature_def"})
        if unsupported or not request.metadata_field:
            raise ServingError(
                f"metadata_field must be ['signature_def'], got {list(request.metadata_field)}", "INVALID_ARGUMENT"
            )
        model = _served(self.manager, request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.model_name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(model.signature_defs)
        return response


class ModelStatusService(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService``: GetModelStatus (model management is not offered)."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        def status() -> get_model_status_pb2.GetModelStatusResponse:
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            statuses = self.manager.status(spec.name, version)
            return get_model_status_pb2.GetModelStatusResponse(
                model_version_status=[s.to_proto() for s in statuses]
            )

        return _answer(context, status)


def start_grpc_server(
    manager: ModelManager, port: int = 8500, host: str = "127.0.0.1", max_workers: int = 8,
    limits: RequestLimits | None = None,
) -> tuple[grpc.Server, int]:
    """Starts the gRPC server (``port=0`` picks a free one); returns it and the bound port.

    Requests larger than ``limits.max_body_bytes`` are refused by gRPC (RESOURCE_EXHAUSTED);
    inputs are checked against ``limits`` before they are materialised.
    """
    limits = limits or RequestLimits()
    options = [
        ("grpc.max_receive_message_length", limits.max_body_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager, limits), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusService(manager), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC server to {host}:{port}")
    server.start()
    return server, bound


def _served(manager: ModelManager, spec: Any) -> LoadedVersion:
    if spec.version_label:
        message = f"version labels are not supported (got {spec.version_label!r}); name a version"
        raise ServingError(message, "INVALID_ARGUMENT")
    return manager.get(spec.name, spec.version.value if spec.HasField("version") else None)


def _answer(context: grpc.ServicerContext, compute: Callable[[], _T]) -> _T:
    """Runs ``compute``; a ServingError becomes the gRPC status TF Serving would send."""
    try:
        return compute()
    except ServingError as error:
        context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), str(error))
    except Exception:
        logger.exception("unexpected error answering a gRPC request")
        context.abort(grpc.StatusCode.INTERNAL, "internal server error (the server log has the details)")
