"""Bounded requests: exclusion is linear in k + n, and the gRPC front applies the REST limits
from the declared tensor shapes, before anything is allocated."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from types import SimpleNamespace

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.unit.test_model_manager import TEXTS, exported_tiny_model, publish
from tfrecs_llm.index.exclusions import excluded_mask
from tfrecs_llm.serving.grpc_service import start_grpc_server
from tfrecs_llm.serving.limits import RequestLimits
from tfrecs_llm.serving.model_manager import ModelManager

_IDS = st.sampled_from([f"item-{i}" for i in range(12)] + ["", "ü-item", "a" * 40])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 3).flatmap(
        lambda batch: st.tuples(
            st.lists(st.lists(_IDS, min_size=4, max_size=4), min_size=batch, max_size=batch),
            st.integers(0, 6).flatmap(
                lambda n: st.lists(st.lists(_IDS, min_size=n, max_size=n), min_size=batch, max_size=batch)
            ),
        )
    )
)
def test_the_sorted_lookup_excludes_exactly_the_listed_ids(case) -> None:
    ids, exclude = case
    width = len(exclude[0])
    exclude_tensor = tf.constant(exclude, tf.string) if width else tf.zeros([len(ids), 0], tf.string)
    got = excluded_mask(tf.constant(ids), exclude_tensor).numpy()
    want = [[item != "" and item in set(row) for item in id_row] for id_row, row in zip(ids, exclude)]
    assert got.tolist() == want


def test_exclusion_memory_is_linear_in_the_list_length() -> None:
    # 64 queries x (10 + 20000) retrieved ids against 20000 excluded ids each: an all-pairs
    # compare would hold 64 * 20010 * 20000 booleans (25 GB); the sorted lookup holds ~64 * 40k.
    rng = np.random.default_rng(0)
    ids = tf.constant(rng.integers(0, 10**9, size=(64, 20_010)).astype(str))
    exclude = tf.constant(rng.integers(0, 10**9, size=(64, 20_000)).astype(str))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mask = excluded_mask(ids, exclude)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert mask.shape == (64, 20_010) and grown_mb < 1_000


@pytest.fixture(scope="module")
def grpc_stub(tmp_path_factory) -> Iterator[SimpleNamespace]:
    model_dir = tmp_path_factory.mktemp("limits") / "tiny"
    publish(model_dir, 1, exported_tiny_model())
    manager = ModelManager(model_dir, "tiny")
    manager.poll_once()
    limits = RequestLimits(max_body_bytes=50_000, max_batch_size=8, max_text_chars=50, max_exclusions=4)
    server, port = start_grpc_server(manager, port=0, limits=limits)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield SimpleNamespace(stub=prediction_service_pb2_grpc.PredictionServiceStub(channel), manager=manager)
    finally:
        channel.close()
        server.stop(grace=None)


def _request(signature: str = "serving_default", **inputs: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    return request


def _strings(shape: list[int], values: list[bytes]) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": s} for s in shape]),
        string_val=values,
    )


def _status(stub, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    return raised.value.code(), raised.value.details()


def test_a_tiny_message_declaring_a_huge_tensor_is_refused_before_allocation(grpc_stub) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # One string, declared as 10^9 of them: make_ndarray would fill ~8 GB.
    code, details = _status(grpc_stub.stub, _request(user_text=_strings([10**9], [b"a"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "input 'user_text': batch of 1000000000 exceeds the limit of 8 per request"
    code, details = _status(
        grpc_stub.stub,
        _request("recommend_with_exclusions", user_text=_strings([1], [b"a"]),
                 exclude_item_ids=_strings([1, 10**8], [b"x"])),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "exclusion list length of 100000000" in details
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 200


@pytest.mark.parametrize(
    "proto, message",
    [
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0],
                                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 1}])),
         "input 'user_text' has dtype DT_FLOAT; the signature expects string"),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"],
                                tensor_shape=tensor_shape_pb2.TensorShapeProto(unknown_rank=True)),
         "input 'user_text': tensor_shape must list its dimensions"),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"],
                                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": -3}])),
         "input 'user_text': dimension 0 has size -3; sizes must be >= 0"),
        (tensor_pb2.TensorProto(dtype=77, string_val=[b"a"],
                                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 1}])),
         "input 'user_text' has dtype 77; the signature expects string"),
    ],
)
def test_malformed_tensors_get_invalid_argument_naming_the_input(grpc_stub, proto, message) -> None:
    code, details = _status(grpc_stub.stub, _request(user_text=proto))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_messages_over_the_size_limit_are_resource_exhausted(grpc_stub) -> None:
    code, _ = _status(grpc_stub.stub, _request(user_text=_strings([2], [b"w" * 30_000, b"x" * 30_000])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_within_the_limits_grpc_answers_like_the_model_with_texts_cut_like_rest(grpc_stub) -> None:
    long_text = TEXTS[0] + " planet" * 100
    response = grpc_stub.stub.Predict(_request(user_text=_strings([2], [long_text.encode(), b"jazz"])), timeout=30)
    expected = grpc_stub.manager.get("tiny").run(
        "serving_default", {"user_text": np.array([long_text[:50], "jazz"], dtype=object)}
    )
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["item_ids"]), expected["item_ids"])


_DIMS = st.one_of(
    st.lists(st.integers(0, 4), min_size=1, max_size=2),  # plausible shapes, values not always matching
    st.lists(st.one_of(st.integers(-2, 6), st.integers(10**6, 10**12)), max_size=3),  # hostile ones
)
_TENSORS = st.builds(
    lambda dtype, dims, unknown_rank, strings, floats: tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": d} for d in dims], unknown_rank=unknown_rank),
        string_val=strings if dtype == types_pb2.DT_STRING else [],
        float_val=floats if dtype == types_pb2.DT_FLOAT else [],
    ),
    st.sampled_from([types_pb2.DT_STRING] * 4 + [types_pb2.DT_FLOAT, types_pb2.DT_INT64, types_pb2.DT_INVALID, 99]),
    _DIMS,
    st.sampled_from([False, False, False, True]),  # unknown_rank
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(st.floats(allow_nan=True), max_size=6),
)
_ANSWERS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.NOT_FOUND}


def test_fuzzed_predict_requests_get_clear_statuses_and_bounded_memory(grpc_stub) -> None:
    answered: dict[str, int] = {}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @given(
        st.sampled_from(["serving_default", "recommend_with_exclusions", "recommend", "embed_query", "nope"]),
        st.dictionaries(st.sampled_from(["user_text", "exclude_item_ids", "history_item_ids", "diversity", "x"]),
                        _TENSORS, max_size=4),
    )
    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    def fuzz(signature: str, inputs: dict) -> None:
        try:
            grpc_stub.stub.Predict(_request(signature, **inputs), timeout=30)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            assert error.details(), code
        answered[code.name] = answered.get(code.name, 0) + 1
        assert code in _ANSWERS, code

    fuzz()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"gRPC fuzz: {sum(answered.values())} requests, {answered}; peak RSS +{grown_mb:.0f} MB")
    assert grown_mb < 300
