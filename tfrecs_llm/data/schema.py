"""Validation and loading of the item catalog and the interaction log.

Everything downstream (user texts, splits, training, serving) relies on the normalised tables
returned here: ids and texts are Python ``str`` in ``object`` columns (so ``.values`` feeds
``tf.constant`` directly), timestamps are ``datetime64[ns, UTC]``, rows keep their order and
index. Problems raise :class:`SchemaError` naming the table, the column, what is expected and
the first offending rows; for CSV sources also the file line (header = line 1, one line per
record).

Validation happens once, at the edge: the public entry points (``Recommender``'s methods,
``tfrecs_llm.evaluate``, the CLI, the loaders) call ``validate_*`` / ``load_*``; everything below
them takes validated tables and never validates again. A validated table carries a stamp in
``DataFrame.attrs`` (kept by pandas through copies, slices and sorts, dropped by ``pd.concat``
with an unstamped table and by new frames), so a validated table handed to another entry point
costs a dtype check, not a second full validation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrecs_llm.data.timestamps import is_number, parse_utc_timestamps

ITEM_COLUMNS = ("item_id", "title", "description")
OPTIONAL_ITEM_COLUMNS = ("category", "tags", "published_at")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_INTERACTION_COLUMNS = ("rating", "label", "user_text")

_MAX_REPORTED_ROWS = 5
_MAX_REPORTED_COLUMNS = 20
_MAX_VALUE_CHARS = 40
_STAMP = "tfrecs_llm.schema"
_TIMESTAMP_EXPECTED = (
    "expected unix seconds (not milliseconds), ISO 8601 strings or datetimes between 1677 and 2262"
)


class SchemaError(ValueError):
    """A table does not match the expected schema; the message says which table, column and rows."""


def validate_items(df: pd.DataFrame, source: str = "items") -> pd.DataFrame:
    """Checks an item catalog and returns a normalised copy.

    Required columns: ``item_id`` (unique, non-empty), ``title`` (non-empty), ``description``
    (missing -> ""). Optional: ``category`` and ``tags`` (added as "" when absent, missing -> ""),
    ``published_at`` (-> ``datetime64[ns, UTC]``, missing -> NaT). Other columns pass through.

    Raises:
        SchemaError: naming ``source``, the column, the expectation and the first bad rows.
    """
    source = str(source)
    require_columns(df, ITEM_COLUMNS, source, OPTIONAL_ITEM_COLUMNS)
    if is_validated(df, "items"):
        return df
    out = df.copy()
    problems: list[str] = []
    item_ids = _text_column(df, "item_id", source, problems, required=True)
    _check_unique(df, item_ids, source, problems)
    out["item_id"] = item_ids
    out["title"] = _text_column(df, "title", source, problems, required=True)
    out["description"] = _text_column(df, "description", source, problems, required=False)
    for column in ("category", "tags"):
        if column in df.columns:
            out[column] = _text_column(df, column, source, problems, required=False)
        else:
            out[column] = pd.Series([""] * len(df), index=df.index, dtype=object)
    if "published_at" in df.columns:
        out["published_at"] = _timestamp_column(df, "published_at", source, problems, False)
    if problems:
        raise SchemaError("\n".join(problems))
    out.attrs[_STAMP] = "items"
    return out


def validate_interactions(
    df: pd.DataFrame, items: pd.DataFrame | None = None, source: str = "interactions"
) -> pd.DataFrame:
    """Checks an interaction log and returns a normalised copy in the original row order.

    Required columns: ``user_id``, ``item_id`` (non-empty), ``timestamp`` (unix seconds, ISO 8601
    strings or datetimes; naive times are taken as UTC). Optional: ``rating`` (numeric, missing ->
    NaN), ``label`` (0/1, true/false), ``user_text`` (missing -> ""). Other columns pass through.
    When ``items`` is given, every ``item_id`` must be in ``items["item_id"]``.

    Raises:
        SchemaError: naming ``source``, the column, the expectation and the first bad rows.
    """
    source = str(source)
    require_columns(df, INTERACTION_COLUMNS, source, OPTIONAL_INTERACTION_COLUMNS)
    if is_validated(df, "interactions"):
        if items is not None:
            problems = []
            _check_known_items(df, df["item_id"], items, source, problems)
            if problems:
                raise SchemaError("\n".join(problems))
        return df
    out = df.copy()
    problems: list[str] = []
    out["user_id"] = _text_column(df, "user_id", source, problems, required=True)
    item_ids = _text_column(df, "item_id", source, problems, required=True)
    if items is not None:
        _check_known_items(df, item_ids, items, source, problems)
    out["item_id"] = item_ids
    out["timestamp"] = _timestamp_column(df, "timestamp", source, problems, True)
    if "rating" in df.columns:
        out["rating"] = _rating_column(df, source, problems)
    if "label" in df.columns:
        out["label"] = _label_column(df, source, problems)
    if "user_text" in df.columns:
        out["user_text"] = _text_column(df, "user_text", source, problems, required=False)
    if problems:
        raise SchemaError("\n".join(problems))
    out.attrs[_STAMP] = "interactions"
    return out


def is_validated(df: pd.DataFrame, kind: str) -> bool:
    """Whether ``df`` came from ``validate_items`` (``kind="items"``) or ``validate_interactions``
    (``"interactions"``) and still has the dtypes they give (string ids, UTC timestamps)."""
    if not isinstance(df, pd.DataFrame) or df.attrs.get(_STAMP) != kind:
        return False
    ids = ("item_id",) if kind == "items" else ("user_id", "item_id")
    if not all(column in df.columns and df[column].dtype == object for column in ids):
        return False
    if kind == "items":
        return all(column in df.columns for column in ITEM_COLUMNS + ("category", "tags"))
    return isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)


def load_items(path: str | Path) -> pd.DataFrame:
    """Reads an item catalog from ``.csv`` or ``.parquet`` and validates it (`validate_items`)."""
    return validate_items(_read_table(path, "item catalog", ITEM_COLUMNS), source=str(path))


def load_interactions(path: str | Path, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reads an interaction log from ``.csv`` or ``.parquet`` and validates it against ``items``."""
    table = _read_table(path, "interaction log", INTERACTION_COLUMNS)
    return validate_interactions(table, items=items, source=str(path))


def require_columns(
    df: pd.DataFrame, required: Sequence[str], source: str, optional: Sequence[str] = ()
) -> None:
    """Raises SchemaError unless ``df`` is a DataFrame with unique column names and ``required``."""
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if duplicated:
        raise SchemaError(f"{source}: column names must be unique; repeated: {_names(duplicated)}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        expected = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
        found = _names([str(c) for c in df.columns[:_MAX_REPORTED_COLUMNS]]) or "none"
        more = " ..." if len(df.columns) > _MAX_REPORTED_COLUMNS else ""
        raise SchemaError(
            f"{source}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{_names(missing)}; expected columns {expected}; found columns: {found}{more}"
        )


def require_validated_interactions(df: pd.DataFrame, source: str = "interactions") -> None:
    """Cheap dtype check that ``df`` came from `validate_interactions` (string ids, UTC times)."""
    require_columns(df, INTERACTION_COLUMNS, source, OPTIONAL_INTERACTION_COLUMNS)
    hint = "pass the table through validate_interactions() or load_interactions() first"
    if not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"{source}: column 'timestamp' has dtype {df['timestamp'].dtype}; "
            f"expected datetime64[ns, UTC]; {hint}"
        )
    for column in ("user_id", "item_id"):
        if not pd.api.types.is_string_dtype(df[column]):
            raise SchemaError(
                f"{source}: column {column!r} has dtype {df[column].dtype}; "
                f"expected string ids; {hint}"
            )


def _read_table(path: str | Path, kind: str, required: Sequence[str]) -> pd.DataFrame:
    path = Path(path)
    expected = f"expected the {kind} as a .csv or .parquet file with columns {', '.join(required)}"
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise SchemaError(f"{path}: unsupported file type {suffix or '(none)'!r}; {expected}")
    if not path.is_file():
        raise SchemaError(f"{path}: file not found; {expected}")
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError as error:
            raise ImportError(
                f"reading {path} needs a parquet engine: pip install pyarrow (or save it as .csv)"
            ) from error
        except (ValueError, OSError) as error:
            raise SchemaError(f"{path}: cannot read parquet ({error}); {expected}") from error
    try:
        # Everything as text: ids like "007" and titles like "None" survive; types come later.
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, OSError) as error:  # ParserError, EmptyDataError, UnicodeDecodeError
        raise SchemaError(
            f"{path}: cannot read as a UTF-8 CSV with a header row ({type(error).__name__}: "
            f"{error}); {expected}"
        ) from error


def _text_column(
    df: pd.DataFrame, column: str, source: str, problems: list[str], *, required: bool
) -> pd.Series:
    """Ids and texts: stripped ``str`` cells; missing -> "" (an error when ``required``)."""
    values, missing, wrong = _convert_cells(df[column], _scalar_text)
    if wrong:
        got = ", ".join(sorted({type(df[column].iloc[pos]).__name__ for pos in wrong}))
        expected = f"expected text (a string or a number), got {got}"
        problems.append(_problem(df, source, column, wrong, "value of the wrong type", expected))
    if required and missing:
        expected = f"{column} values must be non-empty"
        problems.append(_problem(df, source, column, missing, "empty value", expected))
    return pd.Series(values, index=df.index, dtype=object)


def _check_unique(df: pd.DataFrame, ids: pd.Series, source: str, problems: list[str]) -> None:
    positions = np.flatnonzero(ids.duplicated(keep=False) & (ids != "")).tolist()
    if positions:
        noun, expected = "duplicate value", "item ids must be unique"
        problems.append(_problem(df, source, "item_id", positions, noun, expected, ids))


def _check_known_items(
    df: pd.DataFrame, ids: pd.Series, items: pd.DataFrame, source: str, problems: list[str]
) -> None:
    require_columns(items, ("item_id",), "items")
    catalog = set(_convert_cells(items["item_id"], _scalar_text)[0])
    positions = np.flatnonzero(~ids.isin(catalog) & (ids != "")).tolist()
    if positions:
        unknown = list(dict.fromkeys(ids.iloc[positions]))
        more = " ..." if len(unknown) > _MAX_REPORTED_ROWS else ""
        expected = (
            f"unknown item ids: {_names(unknown[:_MAX_REPORTED_ROWS])}{more}; "
            "every interaction must refer to an item of the catalog"
        )
        noun = "value not in the item catalog"
        problems.append(_problem(df, source, "item_id", positions, noun, expected, ids))


def _timestamp_column(
    df: pd.DataFrame, column: str, source: str, problems: list[str], required: bool
) -> pd.Series:
    """Parses to ``datetime64[ns, UTC]``; naive times are UTC, numbers are unix seconds."""
    parsed, missing, unparseable = parse_utc_timestamps(df[column])
    if unparseable:
        noun = "unparseable value"
        problems.append(_problem(df, source, column, unparseable, noun, _TIMESTAMP_EXPECTED))
    if required and missing:
        problems.append(_problem(df, source, column, missing, "empty value", _TIMESTAMP_EXPECTED))
    return parsed


def _rating_column(df: pd.DataFrame, source: str, problems: list[str]) -> pd.Series:
    def to_float(value: Any) -> float:
        if isinstance(value, str) or is_number(value):
            return float(value)
        raise TypeError(type(value).__name__)

    values, _, wrong = _convert_cells(df["rating"], to_float, np.nan, (TypeError, ValueError))
    if wrong:
        expected = "expected numbers (or empty)"
        problems.append(_problem(df, source, "rating", wrong, "non-numeric value", expected))
    return pd.Series(values, index=df.index, dtype=float)


def _label_column(df: pd.DataFrame, source: str, problems: list[str]) -> pd.Series:
    def to_label(value: Any) -> int:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("true", "false"):
                return int(word == "true")
            value = float(word)
        if (isinstance(value, (bool, np.bool_)) or is_number(value)) and value in (0, 1):
            return int(value)
        raise ValueError(value)

    values, missing, wrong = _convert_cells(df["label"], to_label, 0, (TypeError, ValueError))
    bad = sorted(missing + wrong)
    if bad:
        expected = "expected 0/1 or true/false"
        problems.append(_problem(df, source, "label", bad, "invalid value", expected))
    return pd.Series(values, index=df.index, dtype=np.int64)


def _convert_cells(
    series: pd.Series,
    convert: Callable[[Any], Any],
    fill: Any = "",
    errors: tuple[type[Exception], ...] = (TypeError,),
) -> tuple[list[Any], list[int], list[int]]:
    """Converts every cell: (values with ``fill`` for missing/bad cells, missing rows, bad rows).

    NaN, None, NA and blank strings count as missing.
    """
    values: list[Any] = []
    missing: list[int] = []
    wrong: list[int] = []
    for pos, (value, is_na) in enumerate(zip(series.tolist(), series.isna().to_numpy())):
        converted = fill
        if is_na or (isinstance(value, str) and not value.strip()):
            missing.append(pos)
        else:
            try:
                converted = convert(value)
            except errors:
                wrong.append(pos)
        values.append(converted)
    return values, missing, wrong


def _scalar_text(value: Any) -> str:
    """Strings are stripped; integers and integral floats print without ".0" (12.0 -> "12")."""
    if isinstance(value, str):
        return value.strip()
    if is_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    raise TypeError(type(value).__name__)


def _problem(
    df: pd.DataFrame,
    source: str,
    column: str,
    positions: Sequence[int],
    noun: str,
    expected: str,
    values: pd.Series | None = None,
) -> str:
    """One error line: ``source: column 'c' has N nouns (first rows: ...); expected``."""
    shown = list(positions[:_MAX_REPORTED_ROWS])
    cells = (values if values is not None else df[column]).iloc[shown].tolist()
    with_lines = source.lower().endswith(".csv")  # CSV line = position + 2 (line 1 is the header)
    refs = []
    for pos, value in zip(shown, cells):
        row = f"row {df.index[pos]}"
        refs.append(f"{f'line {pos + 2} ({row})' if with_lines else row} {_short_repr(value)}")
    count = len(positions)
    noun = noun if count == 1 else noun.replace("value", "values", 1)
    return (
        f"{source}: column {column!r} has {count} {noun} (first rows: {', '.join(refs)}); "
        f"{expected}"
    )


def _short_repr(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns)
