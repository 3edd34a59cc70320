"""Type aliases shared across layers. Imports nothing of tfrecs_llm, so any module may use it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Union

import numpy as np
import pandas as pd

TableLike = Union[pd.DataFrame, str, Path]
"""A table given as a DataFrame or as a ``.csv`` / ``.parquet`` path."""

Recommendations = list[list[tuple[str, float]]]
"""Per user, ``(item_id, score)`` pairs, best first."""

EmbedTexts = Callable[[Sequence[str]], np.ndarray]
"""Maps ``[n]`` texts to ``[n, dim]`` float32 embeddings."""
