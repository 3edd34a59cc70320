"""Parsing timestamp columns: unix seconds, ISO 8601 and other strings, datetimes -> UTC."""

from __future__ import annotations

import datetime
import numbers
from typing import Any

import numpy as np
import pandas as pd

# datetime64[ns] can only hold this range; anything outside is almost always a unit mistake.
_NS_MIN = pd.Timestamp("1677-09-22", tz="UTC")
_NS_MAX = pd.Timestamp("2262-04-11", tz="UTC")


def parse_utc_timestamps(series: pd.Series) -> tuple[pd.Series, list[int], list[int]]:
    """Parses ``series`` to ``datetime64[ns, UTC]`` (same index): unix seconds, ISO 8601 or
    other date strings, datetimes; naive times are UTC.

    Returns ``(times, missing, unparseable)``: NaT at the positions listed in ``missing`` (empty
    cells) and ``unparseable`` (values that are no time, or outside 1677-2262).
    """
    ns = np.full(len(series), np.iinfo(np.int64).min, dtype=np.int64)  # NaT everywhere
    bad = np.zeros(len(series), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = pd.DatetimeIndex(series)
        parsed = parsed.tz_localize("UTC") if parsed.tz is None else parsed.tz_convert("UTC")
        missing = np.flatnonzero(parsed.isna()).tolist()
        present = np.flatnonzero(parsed.notna())
        _fill_ns(ns, bad, present, parsed[present])
    else:
        cells: dict[str, tuple[list[int], list[Any]]] = {
            kind: ([], []) for kind in ("missing", "bad", "seconds", "text", "datetime")
        }
        for pos, (value, is_na) in enumerate(zip(series.tolist(), series.isna().to_numpy())):
            kind, normalised = ("missing", None) if is_na else _classify_time(value)
            cells[kind][0].append(pos)
            cells[kind][1].append(normalised)
        missing = cells["missing"][0]
        bad[cells["bad"][0]] = True
        at, seconds = cells["seconds"]
        seconds = np.asarray(seconds, dtype=float)
        _fill_ns(ns, bad, at, pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
        at, datetimes = cells["datetime"]
        _fill_ns(ns, bad, at, pd.to_datetime(datetimes, utc=True, errors="coerce"))
        # Strings: ISO 8601 first (vectorised), per-string format inference only for the rest.
        at = np.asarray(cells["text"][0], dtype=np.int64)
        texts = np.asarray(cells["text"][1], dtype=object)
        iso = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
        retry = np.asarray(iso.isna(), dtype=bool)
        _fill_ns(ns, bad, at[~retry], iso[~retry])
        mixed = pd.to_datetime(texts[retry], utc=True, errors="coerce", format="mixed")
        _fill_ns(ns, bad, at[retry], mixed)
    times = pd.Series(ns.view("M8[ns]"), index=series.index).dt.tz_localize("UTC")
    return times, list(missing), np.flatnonzero(bad).tolist()


def _classify_time(value: Any) -> tuple[str, Any]:
    """(kind, value to parse) of a non-NA cell; kind: missing, bad, seconds, text, datetime."""
    if isinstance(value, str):
        value = value.strip()
        try:
            return ("seconds", float(value)) if value else ("missing", None)
        except ValueError:
            return "text", value
    if is_number(value):
        return "seconds", float(value)
    if isinstance(value, (datetime.date, np.datetime64)):
        return "datetime", value
    return "bad", value


def _fill_ns(ns: np.ndarray, bad: np.ndarray, positions: Any, parsed: pd.DatetimeIndex) -> None:
    """Writes parsed times at ``positions`` as int64 ns; marks NaT / out-of-range ones bad."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        return
    parsed = pd.DatetimeIndex(parsed)
    ok = np.asarray(parsed.notna() & (parsed >= _NS_MIN) & (parsed <= _NS_MAX), dtype=bool)
    ns[positions[ok]] = parsed[ok].as_unit("ns").asi8
    bad[positions[~ok]] = True


def is_number(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
