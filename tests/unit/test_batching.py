"""Request batching: concurrent calls merged into one batch and split back exactly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.unit.test_model_manager import exported_tiny_model
from tfrecs_llm.export.batching_config import BatchingParameters
from tfrecs_llm.serving.batching import Batcher, merge
from tfrecs_llm.serving.errors import ServingError
from tfrecs_llm.serving.loaded_version import LoadedVersion


def test_parameters_round_trip_through_tf_servings_text_format() -> None:
    params = BatchingParameters(max_batch_size=16, batch_timeout_micros=500, allowed_batch_sizes=(4, 8, 16))
    text = params.to_text()
    assert "max_batch_size { value: 16 }" in text and "allowed_batch_sizes: 8" in text
    assert BatchingParameters.from_text(text) == params
    with pytest.raises(ValueError, match="line 2: cannot read 'max_batch_sise { value: 3 }'"):
        BatchingParameters.from_text("num_batch_threads { value: 2 }\nmax_batch_sise { value: 3 }", "p.txt")
    with pytest.raises(ValueError, match="allowed_batch_sizes must increase and end with max_batch_size"):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4))


def test_merge_pads_string_matrices_and_batches_to_allowed_sizes() -> None:
    first = {"user_text": np.array([b"a"], object), "exclude_item_ids": np.array([[b"x"]], object)}
    second = {"user_text": np.array([b"b", b"c"], object), "exclude_item_ids": np.array([[b"y", b"z"]] * 2, object)}
    merged, rows = merge([first, second], allowed_sizes=(4, 8))
    assert rows == 3 and merged["user_text"].tolist() == [b"a", b"b", b"c", b"c"]
    assert merged["exclude_item_ids"].tolist() == [[b"x", b""], [b"y", b"z"], [b"y", b"z"], [b"y", b"z"]]


def _echo_batcher(params: BatchingParameters, calls: list) -> Batcher:
    def execute(signature, inputs):
        calls.append(len(inputs["user_text"]))
        if b"boom" in inputs["user_text"].tolist():
            raise ValueError("bad input")
        return {"echo": inputs["user_text"].copy(), "width": np.full(len(inputs["user_text"]), inputs["exclude"].shape[1])}

    return Batcher(execute, params)


def test_concurrent_calls_share_batches_and_get_their_own_rows_back() -> None:
    calls: list[int] = []
    batcher = _echo_batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000, dispatch_when_idle=False),
                            calls)
    texts = [f"text {i}".encode() * (i + 1) for i in range(24)]

    def one(i: int):
        return batcher.run("s", {"user_text": np.array([texts[i]], object), "exclude": np.full((1, i % 3), b"e", object)})

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(one, range(24)))
    batcher.close()
    assert [r["echo"].tolist() for r in results] == [[t] for t in texts]
    assert len(calls) < 24 and sum(calls) == 24 and max(calls) <= 8  # merged, never over the limit


def test_a_failing_request_fails_alone() -> None:
    calls: list[int] = []
    batcher = _echo_batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=50_000, dispatch_when_idle=False),
                            calls)
    inputs = [{"user_text": np.array([t], object), "exclude": np.zeros((1, 0), object)} for t in (b"ok", b"boom", b"fine")]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.run, "s", x) for x in inputs]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result()["echo"].tolist())
            except ValueError as error:
                outcomes.append(str(error))
    batcher.close()
    assert outcomes == [[b"ok"], "bad input", [b"fine"]]


def test_when_idle_a_lone_request_starts_at_once_and_busy_threads_let_batches_grow() -> None:
    started, release, calls = threading.Event(), threading.Event(), []

    def execute(signature, inputs):
        calls.append(inputs["user_text"].tolist())
        started.set()
        release.wait(10)
        return {"echo": inputs["user_text"]}

    # A timeout of an hour: a request that waited for it would never come back within the test.
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=3_600_000_000, num_batch_threads=1)
    batcher = Batcher(execute, params)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher.run, "s", {"user_text": np.array([b"first"], object)})
        assert started.wait(10)  # started without waiting for the timeout
        later = [pool.submit(batcher.run, "s", {"user_text": np.array([f"r{i}".encode()], object)}) for i in range(6)]
        time.sleep(0.3)  # the six queue up behind the busy thread
        release.set()
        assert first.result(timeout=10)["echo"].tolist() == [b"first"]
        assert [f.result(timeout=10)["echo"].tolist() for f in later] == [[f"r{i}".encode()] for i in range(6)]
    batcher.close()
    assert calls[0] == [b"first"] and sorted(len(c) for c in calls[1:]) == [2, 4]  # a full batch, then the rest


def test_a_full_queue_is_unavailable() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(signature, inputs):
        started.set()
        release.wait(10)
        return {"echo": inputs["user_text"]}

    batcher = Batcher(slow, BatchingParameters(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1,
                                               batch_timeout_micros=0))
    request = {"user_text": np.array([b"a"], object)}
    with ThreadPoolExecutor(8) as pool:
        running = pool.submit(batcher.run, "s", request)
        assert started.wait(10)  # the only batch thread is busy from here on
        waiting = [pool.submit(batcher.run, "s", request) for _ in range(2)]  # 1 batch of 2 rows may wait
        time.sleep(0.3)
        with pytest.raises(ServingError, match="queue is full") as raised:
            batcher.run("s", request)
        assert raised.value.code == "UNAVAILABLE"
        release.set()
        answers = [f.result(timeout=10)["echo"].tolist() for f in [running, *waiting]]
    batcher.close()
    assert answers == [[b"a"]] * 3  # the queued requests still get their answers


def test_batched_answers_equal_unbatched_ones_on_a_real_export() -> None:
    path = exported_tiny_model()
    plain = LoadedVersion("tiny", 1, path)
    batched = LoadedVersion("tiny", 1, path, batching=BatchingParameters(max_batch_size=16, batch_timeout_micros=20_000))
    requests = [
        {"user_text": np.array(["space " * (i + 1), "jazz"][: 1 + i % 2], object),
         "exclude_item_ids": np.array([["space-1"] * (i % 4)] * (1 + i % 2), object).reshape(1 + i % 2, i % 4)}
        for i in range(20)
    ]
    expected = [plain.run("recommend_with_exclusions", r) for r in requests]
    with ThreadPoolExecutor(20) as pool:
        got = list(pool.map(lambda r: batched.run("recommend_with_exclusions", r), requests))
    batched.close()
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have["item_ids"], want["item_ids"])
        np.testing.assert_allclose(have["scores"], want["scores"], atol=1e-5)
