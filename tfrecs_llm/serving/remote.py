"""Remote model mode: the REST front serves feedback and per-user recommendations while a TF
Serving (``tensorflow/serving``, or another ``tfrecs-llm serve``) runs the model over gRPC.

The front loads no SavedModel. It learns the served version from GetModelStatus, its signatures
from GetModelMetadata, and reads that version's catalog (``assets.extra/items.csv`` and
``model_card.json``) from the shared model folder, so that user texts are built exactly as at
training time. Every Predict names the version whose catalog built its inputs. A model server
that is down answers 503 (``UNAVAILABLE``) with a JSON error; feedback is still stored, since it
needs only the catalog and the event log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import tensorflow as tf

from tfrecs_llm.serving.client import Client, ServingRequestError
from tfrecs_llm.serving.poller import Poller
from tfrecs_llm.serving.errors import InvalidRequest, ServableNotFound, ServingError
from tfrecs_llm.serving.loaded_version import catalog_builder, read_model_card
from tfrecs_llm.serving.model_manager import VersionStatus

logger = logging.getLogger(__name__)


def grpc_target(model_server: str) -> str:
    """``grpc://HOST:PORT`` (or ``HOST:PORT``) -> ``HOST:PORT``.

    Raises:
        ValueError: not of that form (the message shows what is expected).
    """
    parts = urlsplit(model_server if "://" in model_server else f"grpc://{model_server}")
    if parts.scheme != "grpc" or not parts.hostname or parts.port is None or parts.path not in ("", "/"):
        raise ValueError(f"--model-server must look like grpc://HOST:PORT (TF Serving's gRPC port), got {model_server!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}"


@contextlib.contextmanager
def _as_serving_error() -> Iterator[None]:
    """The client's errors as the REST app answers them: unreachable or too slow -> UNAVAILABLE
    (503), a refusal -> the model server's own status."""
    try:
        yield
    except (ConnectionError, TimeoutError) as error:
        raise ServingError(str(error), "UNAVAILABLE") from error
    except ServingRequestError as error:
        raise ServingError(str(error), str(error.status)) from error


class RemoteVersion:
    """One version served by the remote model server, as the REST app uses a `LoadedVersion`."""

    def __init__(
        self, client: Client, version: int, signature_defs: Any, catalog_path: Path,
        on_retired: Callable[[], object] = lambda: None,
    ) -> None:
        self.model_name = client.model_name
        self.version = version
        self.signature_defs = signature_defs
        self.model_card = read_model_card(catalog_path)
        self.builder = catalog_builder(catalog_path, self.model_card)
        self._client = client
        self._on_retired = on_retired
        self._specs = {  # read once: every request asks for them
            signature: {
                name: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype), name)
                for name, info in definition.inputs.items()
            }
            for signature, definition in signature_defs.signature_def.items()
        }

    def input_specs(self, signature_name: str) -> dict[str, tf.TensorSpec]:
        """Input name -> TensorSpec of a signature, from the model server's signature defs."""
        if signature_name not in self._specs:
            known = sorted(self._specs)
            raise InvalidRequest(f'Serving signature name: "{signature_name}" not found in signature def; known: {known}')
        return dict(self._specs[signature_name])

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict on the model server, this version.

        Raises:
            ServingError: UNAVAILABLE when the model server is down or too slow (HTTP 503), or
                the model server's own status (e.g. INVALID_ARGUMENT, NOT_FOUND).
        """
        try:
            with _as_serving_error():
                outputs, _ = self._client.predict_arrays(signature_name, inputs, self.version)
        except ServingError as error:
            if error.code != "NOT_FOUND":
                raise
            self._on_retired()  # replaced by a newer version since the last poll
            message = f"version {self.version} of {self.model_name} was just replaced on the model server; retry"
            raise ServingError(message, "UNAVAILABLE") from error
        return outputs

    def close(self) -> None:
        """Nothing to release: the model server owns the model."""


class RemoteModelManager:
    """What `ModelManager` offers the REST app, for a model served elsewhere over gRPC.

    Args:
        target: the model server's gRPC ``HOST:PORT``.
        model_name: the model's name there.
        catalog_base_path: the model folder the server loads versions from (shared, read-only
            here): ``<catalog_base_path>/<version>/assets.extra/items.csv``.
        poll_seconds: how often to ask the model server which version it serves.
        timeout: seconds per call to the model server; ``retries``: calls answered UNAVAILABLE
            are sent again this many times (with backoff) before the front answers 503.
    """

    def __init__(
        self, target: str, model_name: str, catalog_base_path: str | Path, poll_seconds: float = 2.0,
        timeout: float = 10.0, retries: int = 2,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds}")
        self.model_name = model_name
        self.target = target
        self.catalog_base_path = Path(catalog_base_path)
        self.poll_seconds = poll_seconds
        self._client = Client(model_name=model_name, grpc_target=target, timeout=timeout, retries=retries)
        self._lock = threading.Lock()
        self._versions: dict[int, RemoteVersion] = {}
        self._latest: int | None = None
        self._poller = Poller(self._poll_quietly, poll_seconds, "remote-model-poller")

    def start(self) -> "RemoteModelManager":
        """Asks the model server once (a server still starting is fine), then polls in a thread."""
        try:
            self.refresh()
        except ServingError as error:
            logger.warning("model server %s not ready yet (%s); answering 503 until it is", self.target, error)
        self._poller.start()
        return self

    def stop(self) -> None:
        self._poller.stop()
        self._client.close()

    @property
    def latest_version(self) -> int | None:
        with self._lock:
            return self._latest

    def refresh(self) -> int | None:
        """Learns the newest AVAILABLE version (and reads its catalog); returns it.

        Raises:
            ServingError: UNAVAILABLE when the model server cannot be reached.
        """
        statuses = self.status(self.model_name)
        available = [s.version for s in statuses if s.state == "AVAILABLE"]
        if not available:
            return self.latest_version
        latest = max(available)
        self._version(latest)
        with self._lock:
            previous, self._latest = self._latest, latest
            self._versions = {v: r for v, r in self._versions.items() if v in available}
        if previous != latest:
            logger.info("model server %s serves version %d of %s (was %s)", self.target, latest, self.model_name, previous)
        return latest

    def get(self, model_name: str, version: int | None = None) -> RemoteVersion:
        """The latest (or a given) version the model server answers with.

        Raises:
            ServableNotFound: another model name, or a version the server does not serve.
            ServingError: UNAVAILABLE when no version is known and the server cannot be reached.
        """
        if model_name != self.model_name:
            request = f"Latest({model_name})" if version is None else f"Specific({model_name}, {version})"
            raise ServableNotFound(f"Servable not found for request: {request}")
        if version is not None:
            return self._version(version)
        latest = self.latest_version
        if latest is None:
            latest = self.refresh()
        if latest is None:
            raise ServingError(f"the model server {self.target} serves no version of {self.model_name} yet", "UNAVAILABLE")
        with self._lock:
            return self._versions[latest]

    def status(self, model_name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus, asked of the model server."""
        if model_name != self.model_name:
            raise ServableNotFound(f"Could not find any versions of model {model_name}")
        with _as_serving_error():
            statuses = self._client.model_status(version)
        return [VersionStatus(v, state) for v, state in sorted(statuses)]

    def _version(self, version: int) -> RemoteVersion:
        with self._lock:
            known = self._versions.get(version)
        if known is not None:
            return known
        with _as_serving_error():
            signature_defs, answered = self._client.signature_defs(version)
        remote = RemoteVersion(
            self._client, answered, signature_defs, self.catalog_base_path / str(answered), self._poll_quietly
        )
        if remote.builder is None:
            logger.warning(
                "%s has no assets.extra/items.csv: feedback and per-user recommendations need version %d's "
                "catalog in the shared model folder", self.catalog_base_path / str(answered), answered,
            )
        with self._lock:
            return self._versions.setdefault(answered, remote)

    def _poll_quietly(self) -> None:
        try:
            self.refresh()
        except ServingError as error:
            logger.debug("polling the model server %s: %s", self.target, error)
        except Exception:  # a poll must never kill the poller
            logger.exception("polling the model server %s failed", self.target)
