"""Generic CSV / Parquet tables with renamed columns, and the file readers all loaders share.

Readers report malformed files as :class:`SchemaError` naming the file, the line and what was
expected. While a loader validates a table read from a text file, the table is indexed by the
line each record starts on, so the schema's "row N" is line N (``lines_source`` says so in the
error); loaders return a fresh ``RangeIndex``.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tfrecs_llm.data.schema import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    OPTIONAL_INTERACTION_COLUMNS,
    OPTIONAL_ITEM_COLUMNS,
    SchemaError,
    validate_interactions,
    validate_items,
)

_SHOWN_CHARS = 80
_SHOWN_FIELDS = 6
_SEPARATOR_NAMES = {",": "comma", "\t": "tab", "|": "pipe", ";": "semicolon"}


def load_generic(
    items_path: str | Path,
    interactions_path: str | Path,
    item_columns: Mapping[str, str] | None = None,
    interaction_columns: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reads an item table and an interaction table (``.csv`` with a header row, or ``.parquet``).

    ``item_columns`` / ``interaction_columns`` map upstream column names to ours, e.g.
    ``{"sku": "item_id", "name": "title"}``; unmapped columns keep their names. CSV files must be
    UTF-8 and every record must have as many fields as the header. Every interaction must refer
    to an item of the catalog.

    Returns:
        ``(items, interactions)`` validated by `validate_items` / `validate_interactions`.

    Raises:
        SchemaError: naming the file (and line), e.g. a mapped column that is missing (with both
            its upstream name and ours) or a mapping onto a name that is not one of our columns.
    """
    items_frame, items_source = _read_table(
        Path(items_path), item_columns or {}, ITEM_COLUMNS + OPTIONAL_ITEM_COLUMNS
    )
    items = validate_items(items_frame, source=items_source)
    events_frame, events_source = _read_table(
        Path(interactions_path),
        interaction_columns or {},
        INTERACTION_COLUMNS + OPTIONAL_INTERACTION_COLUMNS,
    )
    interactions = validate_interactions(events_frame, items=items, source=events_source)
    return items.reset_index(drop=True), interactions.reset_index(drop=True)


def _read_table(
    path: Path, mapping: Mapping[str, str], ours: Sequence[str]
) -> tuple[pd.DataFrame, str]:
    """The renamed table and the ``source`` its validation errors should name."""
    unknown = {upstream: target for upstream, target in mapping.items() if target not in ours}
    if unknown:
        pairs = ", ".join(f"{upstream!r} -> {target!r}" for upstream, target in unknown.items())
        raise SchemaError(
            f"{path}: column mapping {pairs} targets no column of ours; "
            f"expected targets among {', '.join(ours)}"
        )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = read_delimited(path, what="a UTF-8 CSV file with a header row")
        source = lines_source(path)
    elif suffix == ".parquet":
        frame, source = _read_parquet(path), str(path)
    else:
        raise SchemaError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; expected .csv or .parquet"
        )
    for upstream, target in mapping.items():
        if upstream not in frame.columns:
            found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
            raise SchemaError(
                f"{path}: missing column {upstream!r} (mapped to our column {target!r}); "
                f"found columns: {found}"
            )
    return frame.rename(columns=dict(mapping)), source


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SchemaError(f"{path}: file not found; expected a Parquet file")
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise SchemaError(f"{path}: cannot read as Parquet ({error})") from error


def lines_source(path: Path) -> str:
    """The ``source`` for validating a table indexed by file line (see the module docstring)."""
    return f"{path} (rows are line numbers)"


def read_lines(
    path: Path, encoding: str = "utf-8", what: str = "a text file"
) -> Iterator[tuple[int, str]]:
    """``(line number, decoded line)`` pairs, 1-based, line endings kept; ``.gz`` is decompressed.

    Lines are decoded one at a time, so an undecodable byte is reported with its line and its
    byte offset (in the uncompressed stream); a UTF-8 byte-order mark on line 1 is dropped.
    """
    if not path.is_file():
        raise SchemaError(f"{path}: file not found; expected {what}")
    compressed = path.suffix.lower() == ".gz"
    opener = gzip.open if compressed else open
    number, offset = 0, 0
    try:
        with opener(path, "rb") as stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as error:
                    raise SchemaError(
                        f"{path} line {number}: byte {raw[error.start:error.start + 1]!r} at "
                        f"byte offset {offset + error.start} (byte {error.start + 1} of the line) "
                        f"is not valid {encoding}; expected a {encoding} text file "
                        f"(re-encode it, e.g. iconv -f latin1 -t utf-8)"
                    ) from None
                yield number, line.lstrip("\ufeff") if number == 1 else line
                offset += len(raw)
    except (OSError, EOFError, zlib.error) as error:  # bad or truncated gzip, unreadable file
        expected = "a complete gzip file" if compressed else "a readable file"
        raise SchemaError(
            f"{path}: cannot read after line {number} ({error}); expected {expected}"
        ) from error


def read_delimited(
    path: Path,
    *,
    columns: Sequence[str] = (),
    header: bool = True,
    delimiter: str = ",",
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_MINIMAL,
    what: str = "a CSV file",
) -> pd.DataFrame:
    """Records of a delimited text file as ``str`` cells, indexed by the line each starts on.

    With ``header`` the first non-blank line names the columns and must include ``columns``;
    without it every record is named by ``columns``. Blank lines are skipped; every other record
    must have exactly as many fields as there are column names.

    Raises:
        SchemaError: naming the file, the line and ``what`` was expected.
    """
    reader = csv.reader(
        (line for _, line in read_lines(path, encoding, what)),
        delimiter=delimiter,
        quoting=quoting,
        strict=True,
    )
    names = None if header else list(columns)
    cells: list[list[str]] = [[] for _ in names or ()]  # per column: cheaper than row lists
    starts: list[int] = []
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:
                continue
            if names is None:
                names = _checked_header(path, start, row, columns, what)
                cells = [[] for _ in names]
            elif len(row) != len(names):
                raise _field_count_error(path, start, row, names, delimiter)
            else:
                starts.append(start)
                for column, value in zip(cells, row):
                    column.append(value)
    except csv.Error as error:
        raise SchemaError(
            f"{path} line {end + 1}: {error} (unterminated quote or truncated file?); "
            f"expected {what}"
        ) from None
    if names is None:
        raise SchemaError(f"{path}: empty file; expected {what}")
    index = pd.Index(starts, name="line")
    return pd.DataFrame(dict(zip(names, cells)), index=index, dtype=object)


def _checked_header(
    path: Path, line: int, row: list[str], required: Sequence[str], what: str
) -> list[str]:
    names = [name.strip() for name in row]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SchemaError(
            f"{path} line {line}: repeated column name{'s' if len(repeated) > 1 else ''} "
            f"{', '.join(map(repr, repeated))}; expected {what} with unique column names"
        )
    missing = [name for name in required if name not in names]
    if missing:
        raise SchemaError(
            f"{path} line {line}: header lacks column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; expected {what}; "
            f"found header {_shown(','.join(row))}"
        )
    return names


def _field_count_error(
    path: Path, line: int, row: list[str], names: Sequence[str], delimiter: str
) -> SchemaError:
    separator = _SEPARATOR_NAMES.get(delimiter, repr(delimiter))
    listed = ", ".join(names[:_SHOWN_FIELDS]) + (", ..." if len(names) > _SHOWN_FIELDS else "")
    hint = " (truncated line?)" if len(row) < len(names) else ""
    return SchemaError(
        f"{path} line {line}: expected {len(names)} {separator}-separated fields ({listed}), "
        f"got {len(row)}{hint}: {_shown(delimiter.join(row))}"
    )


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "...")


def earlier_user_texts(interactions: pd.DataFrame, texts: Sequence[str]) -> pd.Series:
    """Per event: the same user's most recent non-empty text from a STRICTLY earlier event.

    ``texts[i]`` is what the user wrote with event ``i`` (a review, tags) and usually describes
    that event's item; as the event's own ``user_text`` it would hand the query tower the answer.
    Moved to later events it becomes what the user had said before. Events sharing a timestamp
    never see each other's texts; ties in time keep row order. ``interactions`` is validated;
    the result is a ``str`` column aligned with its index.
    """
    users = pd.factorize(interactions["user_id"])[0]
    times = interactions["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    user_list, time_list = users.tolist(), times.tolist()
    shifted = [""] * len(texts)
    user, time, latest, available = -1, None, "", ""
    for pos in np.lexsort((times, users)).tolist():  # stable: ties keep row order
        if user_list[pos] != user:
            user, time, latest = user_list[pos], None, ""
        if time_list[pos] != time:
            time, available = time_list[pos], latest
        shifted[pos] = available
        latest = texts[pos] or latest
    return pd.Series(shifted, index=interactions.index, dtype=object, name="user_text")


def truncate_words(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words of ``text``, single-spaced."""
    return " ".join(text.split()[:max_words])
