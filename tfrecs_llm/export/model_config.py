"""``models.config``: TF Serving's ModelServerConfig for every model under an export base path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrecs_llm.export.layout import versions

CONFIG_FILE = "models.config"


def write_models_config(base_path: str | Path, serving_root: str = "/models") -> Path:
    """Writes ``<base_path>/models.config`` listing every model folder that holds versions.

    ``serving_root`` is where TF Serving sees ``base_path`` (``/models`` when it is mounted
    there, as in the README's docker command), so each entry reads
    ``base_path: "<serving_root>/<name>"``. Start TF Serving with
    ``--model_config_file=<serving_root>/models.config``. The file is replaced atomically.
    """
    base_path = Path(base_path)
    config = model_server_config_pb2.ModelServerConfig()
    for model_dir in sorted(p for p in base_path.iterdir() if p.is_dir() and versions(p)):
        entry = config.model_config_list.config.add()
        entry.name = model_dir.name
        entry.base_path = f"{serving_root.rstrip('/')}/{model_dir.name}"
        entry.model_platform = "tensorflow"
    handle, staging = tempfile.mkstemp(prefix=".models.config.", dir=base_path)
    with os.fdopen(handle, "w") as file:
        file.write(text_format.MessageToString(config))
    target = base_path / CONFIG_FILE
    os.replace(staging, target)
    return target


def read_models_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    """Parses a ``models.config`` text proto."""
    return text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
