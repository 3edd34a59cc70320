"""The text an item is known by: what the item tower and explanations read."""

from __future__ import annotations

import pandas as pd


def item_texts(items: pd.DataFrame) -> list[str]:
    """``title. description`` per row of a validated items table (in row order)."""
    titles = items["title"].astype(str).str.strip()
    descriptions = items["description"].fillna("").astype(str).str.strip()
    return [f"{t}. {d}" if d else t for t, d in zip(titles, descriptions)]
