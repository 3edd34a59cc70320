"""What every ``tfrecs-llm`` command shares: user errors, ``--set`` parsing, the model config."""

from __future__ import annotations

import argparse
import json
from typing import Any

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError)
"""Errors in what the user gave: printed as one paragraph, exit status 2."""


def parse_override(text: str) -> tuple[str, Any]:
    """``--set section.key=value``: the value as JSON when it parses, else the raw string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set expects section.key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def model_config(args: argparse.Namespace) -> Any:
    """The ``Config`` of ``--config`` (or the defaults) with ``--set``, ``--epochs`` and
    ``--strategy`` applied, validated."""
    from tfrecs_llm.config import Config

    config = Config.load(args.config) if args.config else Config()
    overrides = dict(args.set or [])
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    if getattr(args, "strategy", None) is not None:
        overrides["train.strategy"] = args.strategy
    return config.with_overrides(overrides) if overrides else config.validate()


def announce_device() -> None:
    """Says once which device TensorFlow computes on."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    print(f"device: {len(gpus)} GPU(s) ({', '.join(g.name for g in gpus)})" if gpus
          else "device: CPU (TensorFlow sees no GPU)", flush=True)
