"""The bundled synthetic sample dataset: a small text catalogue and an event log.

``items.csv`` (``item_id, title, description, category, published_at``) and
``interactions.csv`` (``user_id, item_id, timestamp, rating, user_text``) are produced
deterministically by ``python -m tfrecs_llm.data.sample.generate``; ``README.md`` next to them
documents the generative process and the reference baselines. :func:`load_sample` only reads the
files; schema validation lives in :mod:`tfrecs_llm.data.schema`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SAMPLE_DIR: Path = Path(__file__).resolve().parent
"""Directory holding the sample CSV files."""

ITEMS_FILE = "items.csv"
INTERACTIONS_FILE = "interactions.csv"


def load_sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads the bundled ``(items, interactions)`` frames.

    Id and text columns are strings (an empty ``user_text`` is ``""``, not NaN), ``rating`` is an
    integer, and ``published_at`` / ``timestamp`` are parsed to timezone-aware UTC datetimes.
    """
    items = pd.read_csv(
        SAMPLE_DIR / ITEMS_FILE,
        dtype={"item_id": str, "title": str, "description": str, "category": str},
        keep_default_na=False,
    )
    items["published_at"] = pd.to_datetime(items["published_at"], utc=True)
    interactions = pd.read_csv(
        SAMPLE_DIR / INTERACTIONS_FILE,
        dtype={"user_id": str, "item_id": str, "rating": "int64", "user_text": str},
        keep_default_na=False,
    )
    interactions["timestamp"] = pd.to_datetime(interactions["timestamp"], utc=True)
    return items, interactions
