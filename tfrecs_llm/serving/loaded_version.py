"""One loaded SavedModel version: its signatures, signature defs, model card and catalog."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from tfrecs_llm.config import DataConfig
from tfrecs_llm.data.schema import require_columns
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.export.loaded import OPS_HINT, is_missing_op_error, register_ops
from tfrecs_llm.export.batching_config import BatchingParameters
from tfrecs_llm.serving.batching import Batcher
from tfrecs_llm.serving.errors import InvalidRequest, ServingError
from tfrecs_llm.serving.query_cache import TEXT_SIGNATURES, CachedQueries

DEFAULT_SIGNATURE = "serving_default"


class LoadedVersion:
    """A loaded version: its signatures, signature defs, model card and (optional) catalog.

    ``builder`` is a `UserTextBuilder` over ``assets.extra/items.csv`` with the export's
    ``config.data`` (None when the export has no items.csv). ``query_cache`` keeps the query
    embeddings of up to ``query_cache_size`` recent texts (None when 0, or when the export
    lacks ``recommend_from_embedding``).
    """

    def __init__(
        self,
        model_name: str,
        version: int,
        path: Path,
        query_cache_size: int = 0,
        batching: BatchingParameters | None = None,
    ) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.signature_defs = _read_signature_defs(path)
        self.model_card = read_model_card(path)
        register_ops(self.model_card)
        # The loaded object owns the variables the signature functions capture: keep it.
        try:
            self._saved_model = tf.saved_model.load(str(path))
        except Exception as error:
            if is_missing_op_error(error):  # e.g. a ScaNN export without its model card
                raise ServingError(f"{str(error).splitlines()[0]}: {OPS_HINT}", "FAILED_PRECONDITION") from error
            raise
        self._signatures = dict(self._saved_model.signatures)
        # A sequential query tower reads the history too: a text-keyed cache would be wrong.
        sequential = self.model_card.get("config", {}).get("model", {}).get("query_history") == "sequence"
        self.query_cache = (
            CachedQueries(self._signatures, query_cache_size)
            if query_cache_size and not sequential and CachedQueries.supports(self._signatures)
            else None
        )
        self.batcher = Batcher(self._run_arrays, batching) if batching is not None else None
        self.builder = catalog_builder(path, self.model_card)

    def input_specs(self, signature_name: str) -> dict[str, tf.TensorSpec]:
        """Input name -> TensorSpec of a signature."""
        return dict(self._signature(signature_name).structured_input_signature[1])

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature on named arrays (all sharing the batch dimension) -> named arrays.

        Raises:
            InvalidRequest: unknown signature, missing or unknown inputs, wrong dtype or shape.
        """
        specs = self.input_specs(signature_name)
        missing, unknown = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise InvalidRequest(f"{signature_name!r} takes {sorted(specs)}; missing: {missing}, unknown: {unknown}")
        tensors = {name: _to_tensor(name, inputs[name], spec) for name, spec in specs.items()}
        batch_sizes = {name: int(t.shape[0]) for name, t in tensors.items() if t.shape.rank}
        if len(set(batch_sizes.values())) > 1:
            raise InvalidRequest(f"inputs must share the batch size (dimension 0); got {batch_sizes}")
        if self.batcher is not None:
            return self.batcher.run(signature_name, {name: t.numpy() for name, t in tensors.items()})
        return self._run_tensors(signature_name, tensors)

    def close(self) -> None:
        """Stops the batch scheduler (requests still holding this version run unbatched)."""
        if self.batcher is not None:
            self.batcher.close()

    def _run_arrays(self, signature_name: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run_tensors(signature_name, {name: tf.constant(value) for name, value in arrays.items()})

    def _run_tensors(self, signature_name: str, tensors: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
        try:
            if self.query_cache is not None and signature_name in TEXT_SIGNATURES:
                outputs = self.query_cache.run(signature_name, tensors)
            else:
                outputs = self._signature(signature_name)(**tensors)
        except tf.errors.InvalidArgumentError as error:
            raise InvalidRequest(error.message) from error
        return {name: value.numpy() for name, value in outputs.items()}

    def _signature(self, name: str) -> Any:
        if name not in self._signatures:
            known = sorted(self._signatures)
            raise InvalidRequest(f'Serving signature name: "{name}" not found in signature def; known: {known}')
        return self._signatures[name]


def check_complete(path: Path) -> None:
    if not (path / "saved_model.pb").is_file():
        raise ServingError(f"{path} has no saved_model.pb (incomplete export?)", "NOT_FOUND")
    if not (path / "variables").is_dir():
        raise ServingError(f"{path} has no variables/ folder (incomplete export?)", "NOT_FOUND")


def _read_signature_defs(path: Path) -> get_model_metadata_pb2.SignatureDefMap:
    """The signature defs of the ``serve`` MetaGraph, as GetModelMetadata returns them."""
    try:
        saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    except DecodeError as error:
        raise ServingError(f"saved_model.pb is not a SavedModel proto ({error})", "DATA_LOSS") from error
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags]
    if not graphs:
        raise ServingError("saved_model.pb has no MetaGraph tagged 'serve'", "NOT_FOUND")
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in graphs[0].signature_def.items():
        signature_defs.signature_def[name].CopyFrom(signature)
    if DEFAULT_SIGNATURE not in signature_defs.signature_def:
        raise ServingError(f"saved_model.pb has no {DEFAULT_SIGNATURE!r} signature", "NOT_FOUND")
    return signature_defs


def read_model_card(path: Path) -> dict[str, Any]:
    """A version's ``assets.extra/model_card.json`` ({} when absent)."""
    card_path = path / "assets.extra" / "model_card.json"
    return json.loads(card_path.read_text()) if card_path.is_file() else {}


def catalog_builder(path: Path, model_card: Mapping[str, Any]) -> UserTextBuilder | None:
    """The training-time user text builder over a version's ``assets.extra/items.csv``
    (``item_id,title``) with the export's ``config.data``; None when the export has no items.csv."""
    items_csv = path / "assets.extra" / "items.csv"
    if not items_csv.is_file():
        return None
    config = DataConfig(**model_card.get("config", {}).get("data", {}))
    items = pd.read_csv(items_csv, dtype=str, keep_default_na=False)
    require_columns(items, ["item_id", "title"], str(items_csv))
    return UserTextBuilder(
        dict(zip(items["item_id"], items["title"])),
        history_length=config.history_length,
        max_words=config.max_user_text_words,
        title_separator=config.title_separator,
    )


def _to_tensor(name: str, value: np.ndarray, spec: tf.TensorSpec) -> tf.Tensor:
    array = np.asarray(value)
    if not spec.shape.is_compatible_with(array.shape):
        raise InvalidRequest(f"input {name!r} has shape {list(array.shape)}; the signature expects {spec.shape}")
    if spec.dtype == tf.string and not (
        array.dtype.kind in "SU"
        or (array.dtype.kind == "O" and all(isinstance(v, (str, bytes)) for v in array.flat))
    ):
        raise InvalidRequest(f"input {name!r} must hold strings (DT_STRING)")
    try:
        return tf.convert_to_tensor(array, spec.dtype)
    except (TypeError, ValueError) as error:
        raise InvalidRequest(f"input {name!r} cannot be converted to {spec.dtype.name}: {error}") from error
