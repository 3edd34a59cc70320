"""TF Serving's folder layout: ``<base>/<model_name>/<integer version>/``, published atomically."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tfrecs_llm.data.atomic_dir import finish_staging, make_staging_dir

SAVED_MODEL_DIR_MODE = 0o755
"""The mode TensorFlow creates a SavedModel's folders with (before the umask)."""


def versions(model_dir: str | Path) -> list[int]:
    """Integer version folders under ``model_dir``, ascending (TF Serving ignores the rest)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    """One more than the highest existing version, or 1."""
    existing = versions(model_dir)
    return existing[-1] + 1 if existing else 1


@contextmanager
def staged_version(model_dir: str | Path, version: int) -> Iterator[Path]:
    """Yields a hidden staging folder; on success renames it to ``model_dir/version``.

    TF Serving polls for numeric folders, so it never sees a half-written version; on failure the
    staging folder is removed and nothing is published. The version is flushed to disk before
    it appears, with the permissions a plain ``tf.saved_model.save`` gives (0755 minus the umask),
    so a TF Serving process running as another user can read it.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are immutable, pick a new one")
    staging = make_staging_dir(final)
    try:
        yield staging
        finish_staging(staging, SAVED_MODEL_DIR_MODE)
        if final.exists():
            raise FileExistsError(f"{final} appeared while exporting; versions are immutable, pick a new one")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
