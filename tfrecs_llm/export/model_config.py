"""``models.config``: TF Serving's ModelServerConfig for the models under an export base path.

The file is the user's as soon as it exists: an export creates it when absent, and otherwise
only adds an entry for a model it does not list yet, leaving every other line as it was
(comments, version policies, other models, their paths).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrecs_llm.data.atomic_dir import write_file_atomically

CONFIG_FILE = "models.config"
DEFAULT_SERVING_ROOT = "/models"

logger = logging.getLogger(__name__)


def update_models_config(base_path: str | Path, model_name: str, serving_root: str | None = None) -> Path:
    """Makes ``<base_path>/models.config`` list ``model_name``; returns the file's path.

    A new file lists ``model_name`` at ``<serving_root>/<model_name>``: ``serving_root`` is where
    TF Serving sees ``base_path`` (``/models`` when it is mounted there, as in the README's
    docker command). An existing file keeps all it says; a missing entry is added with the
    folder the other entries share (else ``serving_root``). A file TF Serving could not parse
    either is left alone, with a warning. Start TF Serving with
    ``--model_config_file=<serving_root>/models.config``.
    """
    target = Path(base_path) / CONFIG_FILE
    if not target.is_file():
        root = serving_root or DEFAULT_SERVING_ROOT
        config = model_server_config_pb2.ModelServerConfig()
        config.model_config_list.config.append(_entry(model_name, root))
        write_file_atomically(target, text_format.MessageToString(config))
        return target
    text = target.read_text()
    try:
        config = read_models_config(target)
    except text_format.ParseError as error:
        logger.warning("%s is not a ModelServerConfig (%s); left unchanged, add %r to it yourself",
                       target, error, model_name)
        return target
    entries = config.model_config_list.config
    if any(entry.name == model_name for entry in entries):
        return target
    if config.HasField("custom_model_config"):
        logger.warning("%s uses custom_model_config; left unchanged, add %r to it yourself", target, model_name)
        return target
    root = serving_root or _shared_root(entries) or DEFAULT_SERVING_ROOT
    addition = text_format.MessageToString(_entry(model_name, root))
    try:
        updated = _insert_entry(text, addition)
        merged = text_format.Parse(updated, model_server_config_pb2.ModelServerConfig())
    except (ValueError, text_format.ParseError) as error:
        logger.warning("could not add %r to %s (%s); left unchanged", model_name, target, error)
        return target
    expected = [entry.name for entry in entries] + [model_name]
    if [entry.name for entry in merged.model_config_list.config] != expected:
        logger.warning("could not add %r to %s; left unchanged", model_name, target)
        return target
    write_file_atomically(target, updated)
    return target


def read_models_config(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    """Parses a ``models.config`` text proto."""
    return text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())


def _entry(name: str, root: str) -> model_server_config_pb2.ModelConfig:
    return model_server_config_pb2.ModelConfig(
        name=name, base_path=f"{root.rstrip('/')}/{name}", model_platform="tensorflow"
    )


def _shared_root(entries) -> str | None:
    """The folder every entry's base path is ``<folder>/<its name>`` in, if there is one."""
    roots = {entry.base_path.rstrip("/").rpartition("/")[0] for entry in entries
             if entry.base_path.rstrip("/").rpartition("/")[2] == entry.name}
    return roots.pop() if len(roots) == 1 and len(entries) else None


def _insert_entry(text: str, entry_text: str) -> str:
    """``text`` with ``config { <entry_text> }`` added as the last entry of its
    ``model_config_list`` (created at the end when the file has none)."""
    block = "  config {\n" + "".join(f"    {line}\n" for line in entry_text.splitlines()) + "  }\n"
    match = re.search(r"\bmodel_config_list\s*:?\s*\{", _blank_comments(text))
    if match is None:
        return text.rstrip("\n") + ("\n" if text.strip() else "") + "model_config_list {\n" + block + "}\n"
    close = _matching_brace(text, match.end() - 1)
    head = text[:close]
    return head + ("" if head.endswith("\n") else "\n") + block + text[close:]


def _blank_comments(text: str) -> str:
    """``text`` with ``#`` comments and string contents replaced by spaces (same length)."""
    out, in_string, quote, in_comment = [], False, "", False
    escaped = False
    for char in text:
        if in_comment:
            in_comment = char != "\n"
            out.append(char if char == "\n" else " ")
        elif in_string:
            out.append(" ")
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                in_string = False
        elif char == "#":
            in_comment = True
            out.append(" ")
        elif char in "\"'":
            in_string, quote = True, char
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _matching_brace(text: str, opening: int) -> int:
    """Position of the ``}`` closing the ``{`` at ``opening`` (comments and strings skipped)."""
    depth = 0
    for position, char in enumerate(_blank_comments(text)[opening:], opening):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return position
    raise ValueError("unbalanced braces in models.config")
