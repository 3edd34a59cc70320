"""Serving SavedModel versions the way TF Serving does: poll, load, warm up, swap, retire.

Policy (TF Serving's ``latest`` version policy, availability preserving): the highest integer
version folder that is complete (``saved_model.pb`` and ``variables/``), loads, and answers its
warmup requests is served. A version failing any step is refused with the reason (state END with
an error, as in TF Serving's GetModelStatus) and not retried until its content changes; the current
version keeps serving. The swap is one reference assignment under a lock: a request keeps the
`LoadedVersion` it got, so no request fails while a new version takes over.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_status_pb2, status_pb2

from tfrecs_llm.export.layout import versions
from tfrecs_llm.export.warmup import replay_warmup_requests
from tfrecs_llm.export.batching_config import BatchingParameters
from tfrecs_llm.serving.poller import Poller
from tfrecs_llm.serving.errors import ServableNotFound, ServingError
from tfrecs_llm.serving.loaded_version import LoadedVersion, check_complete

logger = logging.getLogger(__name__)

_RETIRE_SECONDS = 30.0


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
        batching: run concurrent requests of one signature as one batch (TF Serving's
            ``--enable_batching``, see ``tfrecs_llm.serving.batching``); None: one at a time.
    """

    def __init__(
        self,
        model_base_path: str | Path,
        model_name: str,
        poll_seconds: float = 2.0,
        keep_versions: int | None = None,
        keep_previous_loaded: bool = False,
        query_cache_size: int = 1024,
        batching: BatchingParameters | None = None,
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
        self.batching = batching
        self._changed = threading.Condition()  # guards the three fields below
        self._served: dict[int, LoadedVersion] = {}
        self._latest: int | None = None
        self._statuses: dict[int, VersionStatus] = {}
        self._refused: dict[int, str] = {}  # version -> content fingerprint when refused
        self._poll_lock = threading.Lock()
        self._poller = Poller(self._poll_quietly, poll_seconds, "model-poller")

    def start(self) -> "ModelManager":
        """Loads what is there now (blocking), then keeps polling in a daemon thread."""
        if not versions(self.model_base_path) and versions(self.model_base_path / self.model_name):
            logger.warning(
                "%s holds no version folders but %s does; model_base_path is the folder that "
                "holds the versions", self.model_base_path, self.model_base_path / self.model_name,
            )
        self.poll_once()
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stops polling (loaded versions keep answering until dropped)."""
        self._poller.stop()

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

    def _poll_quietly(self) -> None:
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
            check_complete(path)
            loaded = LoadedVersion(self.model_name, version, path, self.query_cache_size, self.batching)
            warmed = replay_warmup_requests(path, loaded.run)
        except Exception as error:  # any failure refuses the version, never the server
            code = status_code(error)
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
                # Requests that got the old version finish on it; its batch scheduler stops later.
                retire = threading.Timer(_RETIRE_SECONDS, served[version].close)
                retire.daemon = True
                retire.start()
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


_HASHED_BYTES_LIMIT = 256 * 1024 * 1024
"""Files up to this size are hashed (saved_model.pb, variables.index, assets); larger ones are
known by name and size: variables.index holds a checksum of every tensor in the data shards."""


def _fingerprint(path: Path) -> str:
    """A hash of the version's content: a refused version is retried once it changes, even when
    a fixed copy keeps every file's size and modification time (``cp -p``)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            size = file.stat().st_size
            digest.update(f"{file.relative_to(path)}\0{size}\0".encode())
            if size <= _HASHED_BYTES_LIMIT and not file.name.startswith("variables.data"):
                with open(file, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        except OSError:
            digest.update(f"{file}\0unreadable".encode())
    return digest.hexdigest()


def status_code(error: BaseException) -> str:
    """The TF status name of an error (or of the error it was raised from), else UNKNOWN."""
    if isinstance(error, tf.errors.OpError):
        return error_codes_pb2.Code.Name(error.error_code)
    if isinstance(error, ServingError):
        return error.code
    return status_code(error.__cause__) if error.__cause__ is not None else "UNKNOWN"
