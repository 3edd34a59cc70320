"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests`` of a version folder.

TF Serving (and `tfrecs_llm.serving.ModelManager`, through `replay_warmup_requests`) replays
them after loading a version and before serving it, so the first real request does not pay for
lazy initialisation, and a version that cannot answer them is never served. The file is a TFRecord of
``tensorflow_serving.apis.prediction_log_pb2.PredictionLog`` protos, one PredictRequest each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000
"""TF Serving refuses a warmup file with more records than this."""


def warmup_path(version_dir: str | Path) -> Path:
    """Where TF Serving looks for the warmup file of a version folder."""
    return Path(version_dir) / "assets.extra" / WARMUP_FILE


def write_warmup_requests(
    version_dir: str | Path,
    model_name: str,
    user_texts: Sequence[str],
    signature_name: str = "serving_default",
    batch_sizes: Sequence[int] = (1,),
) -> Path:
    """Writes one ``user_text: [1] string`` PredictRequest per text, then, for each other size n
    in ``batch_sizes``, one ``user_text: [n]`` request (the texts, cycled); returns the path.

    ``version_dir`` is a version folder, or the staging folder the exporter renames to one.
    Texts should look like real queries (free text and titles), so warmup exercises the same
    tokenizer and sequence lengths as traffic. Exports whose BERT is compiled by XLA pass the
    batch sizes it compiles a program for, so that no request waits seconds for a compilation.
    """
    texts = list(user_texts)
    if not texts:
        raise ValueError("user_texts is empty; give at least one representative user text")
    sizes = [int(n) for n in batch_sizes if n != 1]
    if len(texts) + len(sizes) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"{len(texts)} warmup texts and {len(sizes)} larger batches; TF Serving accepts at "
            f"most {MAX_WARMUP_RECORDS} records"
        )
    wrong = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if wrong:
        raise TypeError(f"user_texts must be strings; entries {wrong[:5]} are not")
    if any(n < 1 for n in sizes):
        raise ValueError(f"batch_sizes must be >= 1, got {list(batch_sizes)}")
    batches = [[text] for text in texts] + [[texts[i % len(texts)] for i in range(n)] for n in sizes]
    path = warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            request.inputs["user_text"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def replay_warmup_requests(
    version_dir: str | Path, run: Callable[[str, dict[str, np.ndarray]], object]
) -> int:
    """Runs each warmup request of a version folder as ``run(signature_name, inputs)``, as TF
    Serving does before serving the version. Returns how many ran (0 without a warmup file).

    Raises:
        ValueError: naming the request that failed (raised from ``run``'s error).
    """
    path = warmup_path(version_dir)
    if not path.is_file():
        return 0
    logs = read_warmup_requests(path)
    for position, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"{path}: warmup record {position} is a {kind}; only predict_log is supported")
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            run(request.model_spec.signature_name or "serving_default", inputs)
        except Exception as error:
            raise ValueError(f"warmup request {position} failed: {error}") from error
    return len(logs)


def read_warmup_requests(path: str | Path) -> list[prediction_log_pb2.PredictionLog]:
    """Parses a warmup file (a TFRecord of PredictionLog protos), in file order.

    Raises:
        ValueError: naming the file and the record that is not a PredictionLog, or when the
            file holds more records than TF Serving accepts.
    """
    logs = []
    for position, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
        if position >= MAX_WARMUP_RECORDS:
            raise ValueError(f"{path}: more than {MAX_WARMUP_RECORDS} warmup records")
        try:
            logs.append(prediction_log_pb2.PredictionLog.FromString(record))
        except Exception as error:  # protobuf raises DecodeError or RuntimeError by backend
            raise ValueError(f"{path}: record {position} is not a PredictionLog ({error})") from error
    return logs
