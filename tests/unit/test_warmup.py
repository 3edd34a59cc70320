"""Warmup requests: a TFRecord of PredictionLog protos in TF Serving's place and format."""

from __future__ import annotations

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrecs_llm.export.warmup import read_warmup_requests, replay_warmup_requests, write_warmup_requests

TEXTS = ["space rocket planet", "pasta ; sauce", ""]


def test_warmup_file_is_a_tfrecord_of_predict_logs(tmp_path) -> None:
    path = write_warmup_requests(tmp_path, "tiny", TEXTS)
    assert path == tmp_path / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(record) for record in records]
    assert logs == read_warmup_requests(path) and len(logs) == 3
    for log, text in zip(logs, TEXTS):
        request = log.predict_log.request
        assert (request.model_spec.name, request.model_spec.signature_name) == ("tiny", "serving_default")
        tensor = request.inputs["user_text"]
        assert tensor.dtype == tf.string.as_datatype_enum
        assert tf.make_ndarray(tensor).tolist() == [text.encode()]


def test_writing_checks_the_texts(tmp_path) -> None:
    with pytest.raises(ValueError, match="user_texts is empty"):
        write_warmup_requests(tmp_path, "tiny", [])
    with pytest.raises(ValueError, match="at most 1000 records"):
        write_warmup_requests(tmp_path, "tiny", ["a"] * 1001)
    with pytest.raises(TypeError, match=r"entries \[1\] are not"):
        write_warmup_requests(tmp_path, "tiny", ["a", 3])


def test_reading_names_a_record_that_is_not_a_prediction_log(tmp_path) -> None:
    path = tmp_path / "tf_serving_warmup_requests"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="record 0 is not a PredictionLog"):
        read_warmup_requests(path)


def test_replay_runs_every_request_and_names_the_one_that_fails(tmp_path) -> None:
    write_warmup_requests(tmp_path, "tiny", TEXTS)
    calls = []
    assert replay_warmup_requests(tmp_path, lambda signature, inputs: calls.append((signature, inputs))) == 3
    assert [(s, i["user_text"].tolist()) for s, i in calls] == [("serving_default", [t.encode()]) for t in TEXTS]

    def fail_on_empty_text(signature: str, inputs: dict) -> None:
        if inputs["user_text"][0] == b"":
            raise RuntimeError("empty text")

    with pytest.raises(ValueError, match="warmup request 2 failed: empty text"):
        replay_warmup_requests(tmp_path, fail_on_empty_text)
    assert replay_warmup_requests(tmp_path / "no-warmup-here", fail_on_empty_text) == 0


def test_larger_batch_sizes_add_one_request_each_with_the_texts_cycled(tmp_path) -> None:
    path = write_warmup_requests(tmp_path, "tiny", TEXTS, batch_sizes=(1, 2, 4))
    batches = [tf.make_ndarray(log.predict_log.request.inputs["user_text"]).tolist() for log in read_warmup_requests(path)]
    expected_singles = [[t.encode()] for t in TEXTS]
    assert batches == expected_singles + [[b"space rocket planet", b"pasta ; sauce"], [t.encode() for t in TEXTS + TEXTS[:1]]]
    with pytest.raises(ValueError, match="batch_sizes must be >= 1"):
        write_warmup_requests(tmp_path, "tiny", TEXTS, batch_sizes=(0,))
    with pytest.raises(ValueError, match="999 warmup texts and 2 larger batches"):
        write_warmup_requests(tmp_path, "tiny", ["a"] * 999, batch_sizes=(2, 4))
