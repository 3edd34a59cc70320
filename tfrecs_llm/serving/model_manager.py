"""Serving SavedModel versions the way TF Serving does: poll, load, warm up, swap, retire.

Policy (TF Serving's ``latest`` version policy, availability preserving): the highest integer
version folder that is complete (``saved_model.pb`` and ``variables/``), loads, and answers its
warmup requests is served. A version failing any step is refused with the reason (state END with
an error, as in TF Serving's GetModelStatus) and not retried until its files change; the current
version keeps serving. The swap is one reference assignment under a lock: a request keeps the
`LoadedVersion` it got, so no request fails while a new version takes over.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops of the tokenizer graph)
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2

from tfrecs_llm.config import DataConfig
from tfrecs_llm.data.schema import require_columns
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.export.layout import versions
from tfrecs_llm.export.warmup import replay_warmup_requests
from tfrecs_llm.serving.query_cache import TEXT_SIGNATURES, CachedQueries

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"


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


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatus: ``state`` is START, LOADING, AVAILABLE, UNLOADING or END.

    A refused version is END with a non-OK ``error_code`` (a TF status name) and the reason.
    """

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""

    def to_proto(self) -> get_model_status_pb2.ModelVersionStatus:
        return get_model_status_pb2.ModelVersionStatus(
            version=self.version,
            state=get_model_status_pb2.ModelVersionStatus.State.Value(self.state),
            status=status_pb2.StatusProto(
                error_code=error_codes_pb2.Code.Value(self.error_code),
                error_message=self.error_message,
            ),
        )


class LoadedVersion:
    """A loaded version: its signatures, signature defs, model card and (optional) catalog.

    ``builder`` is a `UserTextBuilder` over ``assets.extra/items.csv`` with the export's
    ``config.data`` (None when the export has no items.csv). ``query_cache`` keeps the query
    embeddings of up to ``query_cache_size`` recent texts (None when 0, or when the export
    lacks ``recommend_from_embedding``).
    """

    def __init__(self, model_name: str, version: int, path: Path, query_cache_size: int = 0) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.signature_defs = _read_signature_defs(path)
        card_path = path / "assets.extra" / "model_card.json"
        self.model_card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.is_file() else {}
        if self.model_card.get("index", {}).get("kind") == "scann":
            import scann  # noqa: F401  (registers the ScaNN ops)
        # The loaded object owns the variables the signature functions capture: keep it.
        self._saved_model = tf.saved_model.load(str(path))
        self._signatures = dict(self._saved_model.signatures)
        self.query_cache = (
            CachedQueries(self._signatures, query_cache_size)
            if query_cache_size and CachedQueries.supports(self._signatures)
            else None
        )
        items_csv = path / "assets.extra" / "items.csv"
        data_config = DataConfig(**self.model_card.get("config", {}).get("data", {}))
        self.builder = _user_text_builder(items_csv, data_config) if items_csv.is_file() else None

    def input_specs(self, signature_name: str) -> dict[str, tf.TensorSpec]:
        """Input name -> TensorSpec of a signature."""
        return dict(self._signature(signature_name).structured_input_signature[1])

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs a signature on named arrays (all sharing the batch dimension) -> named arrays.

        Raises:
            InvalidRequest: unknown signature, missing or unknown inputs, wrong dtype or shape.
        """
        function = self._signature(signature_name)
        specs = self.input_specs(signature_name)
        missing, unknown = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise InvalidRequest(f"{signature_name!r} takes {sorted(specs)}; missing: {missing}, unknown: {unknown}")
        tensors = {name: _to_tensor(name, inputs[name], spec) for name, spec in specs.items()}
        batch_sizes = {name: int(t.shape[0]) for name, t in tensors.items() if t.shape.rank}
        if len(set(batch_sizes.values())) > 1:
            raise InvalidRequest(f"inputs must share the batch size (dimension 0); got {batch_sizes}")
        try:
            if self.query_cache is not None and signature_name in TEXT_SIGNATURES:
                outputs = self.query_cache.run(signature_name, tensors)
            else:
                outputs = function(**tensors)
        except tf.errors.InvalidArgumentError as error:
            raise InvalidRequest(error.message) from error
        return {name: value.numpy() for name, value in outputs.items()}

    def _signature(self, name: str) -> Any:
        if name not in self._signatures:
            known = sorted(self._signatures)
            raise InvalidRequest(f'Serving signature name: "{name}" not found in signature def; known: {known}')
        return self._signatures[name]


class ModelManager:
    """Serves the newest complete version under ``model_base_path`` (TF Serving's flag meaning:
    the folder holding the integer version folders, e.g. ``saved_models/demo``).

    Args:
        model_name: the name requests use (``/v1/models/<model_name>``).
        poll_seconds: how often the background thread looks for new versions.
        keep_versions: if set, after each poll delete all but the newest ``keep_versions``
            version folders at or below the served one (never a loaded one, never newer ones).
        keep_previous_loaded: keep the replaced version loaded (requests may name it).
        query_cache_size: query embeddings of this many recent user texts are kept per loaded
            version, so a repeated text skips BERT (0 disables the cache).
    """

    def __init__(
        self,
        model_base_path: str | Path,
        model_name: str,
        poll_seconds: float = 2.0,
        keep_versions: int | None = None,
        keep_previous_loaded: bool = False,
        query_cache_size: int = 1024,
    ) -> None:
        if keep_versions is not None and keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1 (or None to keep all), got {keep_versions}")
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds}")
        if query_cache_size < 0:
            raise ValueError(f"query_cache_size must be >= 0 (0 disables the cache), got {query_cache_size}")
        self.model_base_path = Path(model_base_path)
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        self.keep_versions = keep_versions
        self.keep_previous_loaded = keep_previous_loaded
        self.query_cache_size = query_cache_size
        self._changed = threading.Condition()  # guards the three fields below
        self._served: dict[int, LoadedVersion] = {}
        self._latest: int | None = None
        self._statuses: dict[int, VersionStatus] = {}
        self._refused: dict[int, tuple] = {}  # version -> file fingerprint when refused
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ModelManager":
        """Loads what is there now (blocking), then keeps polling in a daemon thread."""
        if not versions(self.model_base_path) and versions(self.model_base_path / self.model_name):
            logger.warning(
                "%s holds no version folders but %s does; model_base_path is the folder that "
                "holds the versions", self.model_base_path, self.model_base_path / self.model_name,
            )
        self.poll_once()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_forever, name="model-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops polling (loaded versions keep answering until dropped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def latest_version(self) -> int | None:
        """The version answering requests that name no version (None before the first load)."""
        with self._changed:
            return self._latest

    def get(self, model_name: str, version: int | None = None) -> LoadedVersion:
        """The latest served version, or a specific served one.

        Raises:
            ServableNotFound: with TF Serving's message (``Latest(name)`` / ``Specific(name, v)``).
        """
        request = f"Latest({model_name})" if version is None else f"Specific({model_name}, {version})"
        with self._changed:
            key = self._latest if version is None else version
            if model_name != self.model_name or key not in self._served:
                raise ServableNotFound(f"Servable not found for request: {request}")
            return self._served[key]

    def status(self, model_name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus: every version seen (or one), ascending by version."""
        with self._changed:
            statuses = [self._statuses[v] for v in sorted(self._statuses)]
        if model_name != self.model_name or not statuses:
            raise ServableNotFound(f"Could not find any versions of model {model_name}")
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
            if not statuses:
                raise ServableNotFound(f"Could not find version {version} of model {model_name}")
        return statuses

    def wait_for_version(self, version: int, timeout: float) -> LoadedVersion:
        """Blocks until ``version`` (or a newer one) is the latest served; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._latest is not None and self._latest >= version, timeout):
                raise TimeoutError(
                    f"version {version} of {self.model_name} not served after {timeout} s; "
                    f"status: {[self._statuses[v] for v in sorted(self._statuses)]}"
                )
            return self._served[self._latest]

    def poll_once(self) -> int | None:
        """One poll: serve the newest acceptable new version, retire old ones; returns the latest."""
        with self._poll_lock:
            on_disk = versions(self.model_base_path)
            latest = self.latest_version
            # If the served folder was deleted (a rollback), any remaining version may take over.
            floor = latest if latest in on_disk else None
            for version in reversed(on_disk):
                if floor is not None and version <= floor:
                    break
                loaded = self._served.get(version) or self._try_load(version)
                if loaded is not None:
                    self._switch_to(loaded)
                    break
            self._delete_old_versions(on_disk)
            return self.latest_version

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # a poll must never kill the poller; the next one retries
                logger.exception("polling %s failed", self.model_base_path)

    def _try_load(self, version: int) -> LoadedVersion | None:
        path = self.model_base_path / str(version)
        fingerprint = _fingerprint(path)
        if self._refused.get(version) == fingerprint:
            return None
        self._set_status(VersionStatus(version, "LOADING"))
        try:
            _check_complete(path)
            loaded = LoadedVersion(self.model_name, version, path, self.query_cache_size)
            warmed = replay_warmup_requests(path, loaded.run)
        except Exception as error:  # any failure refuses the version, never the server
            code = _status_code(error)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            logger.warning("refusing version %d of %s (%s): %s", version, self.model_name, path, reason)
            self._refused[version] = fingerprint
            self._set_status(VersionStatus(version, "END", code, reason))
            return None
        self._refused.pop(version, None)
        logger.info("loaded version %d of %s (%d warmup requests)", version, self.model_name, warmed)
        return loaded

    def _switch_to(self, loaded: LoadedVersion) -> None:
        with self._changed:
            previous = self._latest
            keep = {loaded.version} | ({previous} if self.keep_previous_loaded and previous is not None else set())
            served = {**self._served, loaded.version: loaded}
            for version in set(served) - keep:
                self._statuses[version] = VersionStatus(version, "END")
            self._served = {v: served[v] for v in keep}
            self._latest = loaded.version
            self._statuses[loaded.version] = VersionStatus(loaded.version, "AVAILABLE")
            self._changed.notify_all()
        if previous != loaded.version:
            logger.info("serving version %d of %s (was %s)", loaded.version, self.model_name, previous)

    def _delete_old_versions(self, on_disk: list[int]) -> None:
        latest = self.latest_version
        if self.keep_versions is None or latest is None:
            return
        with self._changed:
            loaded = set(self._served)
        for version in [v for v in on_disk if v <= latest][: -self.keep_versions]:
            if version in loaded:
                continue
            try:
                shutil.rmtree(self.model_base_path / str(version))
            except OSError as error:
                logger.warning("could not delete version %d: %s", version, error)
                continue
            logger.info("deleted version %d of %s (keep_versions=%d)", version, self.model_name, self.keep_versions)
            self._refused.pop(version, None)
            with self._changed:
                self._statuses.pop(version, None)

    def _set_status(self, status: VersionStatus) -> None:
        with self._changed:
            self._statuses[status.version] = status


def _status_code(error: BaseException) -> str:
    """The TF status name of an error (or of the error it was raised from), else UNKNOWN."""
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code)
    if isinstance(error, ServingError):
        return error.code
    return _status_code(error.__cause__) if error.__cause__ is not None else "UNKNOWN"


def _check_complete(path: Path) -> None:
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


def _user_text_builder(items_csv: Path, config: DataConfig) -> UserTextBuilder:
    """The training-time user text builder over the export's ``item_id,title`` table."""
    items = pd.read_csv(items_csv, dtype=str, keep_default_na=False)
    require_columns(items, ["item_id", "title"], str(items_csv))
    return UserTextBuilder(
        dict(zip(items["item_id"], items["title"])),
        history_length=config.history_length,
        max_words=config.max_user_text_words,
        title_separator=config.title_separator,
    )


def _fingerprint(path: Path) -> tuple:
    """(path, mtime, size) of the folder and its files: a refused version is retried on change."""
    entries = []
    for entry in [path, *path.glob("*"), *path.glob("variables/*"), *path.glob("assets.extra/*")]:
        try:
            stat = entry.stat()
        except OSError:
            continue
        entries.append((str(entry), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


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
