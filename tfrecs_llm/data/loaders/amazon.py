"""Amazon Reviews 2023 (McAuley Lab): ``<Category>.jsonl`` reviews and ``meta_<Category>.jsonl``.

Both are JSON Lines, optionally gzipped (``.jsonl.gz``). Items are keyed by ``parent_asin``
(reviews of colour/size variants, ``asin``, count for their parent product).
"""

from __future__ import annotations

import html
import json
import logging
import numbers
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrecs_llm.data.loaders.generic import (
    earlier_user_texts,
    lines_source,
    read_lines,
    truncate_words,
)
from tfrecs_llm.data.schema import SchemaError, validate_interactions, validate_items

logger = logging.getLogger(__name__)

_REVIEW_KEYS = ("user_id", "parent_asin", "timestamp", "rating")
_META_KEYS = ("parent_asin", "title")
_REVIEW_FORMAT = "an Amazon Reviews 2023 review (<Category>.jsonl)"
_META_FORMAT = "an Amazon Reviews 2023 item (meta_<Category>.jsonl)"
_MAX_MILLISECONDS = pd.Timestamp.max.value // 1_000_000
_HTML_TAG = re.compile(r"<[^>]*>")
_SENTENCE_END = (".", "!", "?", ":", ";")


def load_amazon_reviews(
    reviews_path: str | Path,
    meta_path: str | Path,
    max_description_words: int = 100,
    max_review_words: int = 60,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loads one category of Amazon Reviews 2023 as ``(items, interactions)``.

    Items (from ``meta_path``): ``item_id`` = parent_asin, ``title``, ``description`` = the
    ``description`` paragraphs then the ``features`` bullets (HTML removed, cut to
    ``max_description_words``), ``category`` = main_category or else the first of
    ``categories``, ``tags`` = ``categories`` joined by "|". Items with an empty title are
    skipped (there is nothing to show or to match).

    Interactions (from ``reviews_path``, in file order): ``user_id``, ``item_id`` =
    parent_asin, ``timestamp`` (from milliseconds), ``rating`` and ``user_text``. Reviews of
    products without metadata (common upstream: about a quarter of the products have none) or
    with an empty title are dropped after the user texts are built; the count is logged.

    Leakage: a review ("title. text", cut to ``max_review_words``) describes the item reviewed,
    and `UserTextBuilder.for_events` uses an event's own ``user_text`` as the free text from
    which that event's item is retrieved. So a review is only user text for the user's LATER
    events: each event's ``user_text`` is the user's previous review (the most recent non-empty
    one from a strictly earlier time, see `earlier_user_texts`), "" for their first event.

    Raises:
        SchemaError: naming the file and line: invalid JSON (e.g. a truncated line), invalid
            UTF-8, a missing key, a value of the wrong type or a damaged gzip file.
        ValueError: a word limit below 1.
    """
    if min(max_description_words, max_review_words) < 1:
        raise ValueError(
            "max_description_words and max_review_words must be >= 1, got "
            f"{max_description_words} and {max_review_words}"
        )
    items = _read_items(Path(meta_path), max_description_words)
    interactions, reviews = _read_reviews(Path(reviews_path), max_review_words)
    interactions["user_text"] = earlier_user_texts(interactions, reviews)
    described = interactions["item_id"].isin(set(items["item_id"]))
    if not described.all():
        logger.info(
            "%s: dropped %d of %d reviews whose parent_asin has no titled item in %s",
            reviews_path, int((~described).sum()), len(interactions), meta_path,
        )
    return items.reset_index(drop=True), interactions[described].reset_index(drop=True)


def _read_items(path: Path, max_words: int) -> pd.DataFrame:
    columns: dict[str, list[str]] = {
        name: [] for name in ("item_id", "title", "description", "category", "tags")
    }
    lines: list[int] = []
    untitled = 0
    for line, record in _read_jsonl(path, _META_KEYS, _META_FORMAT):
        title = _clean(_text(record, "title", path, line))
        if not title:
            untitled += 1
            continue
        categories = _texts(record, "categories", path, line)
        paragraphs = [
            *_texts(record, "description", path, line),
            *_texts(record, "features", path, line),
        ]
        columns["item_id"].append(record["parent_asin"])
        columns["title"].append(title)
        columns["description"].append(truncate_words(_sentences(paragraphs), max_words))
        columns["category"].append(
            _clean(_text(record, "main_category", path, line)) or next(iter(categories), "")
        )
        columns["tags"].append("|".join(categories))
        lines.append(line)
    if untitled:
        logger.info("%s: skipped %d items with an empty title", path, untitled)
    table = pd.DataFrame(columns, index=pd.Index(lines, name="line"), dtype=object)
    return validate_items(table, source=lines_source(path))


def _read_reviews(path: Path, max_words: int) -> tuple[pd.DataFrame, list[str]]:
    """Validated interactions (no ``user_text`` yet) and each review's own text."""
    columns: dict[str, list[Any]] = {name: [] for name in ("user_id", "item_id", "rating")}
    milliseconds: list[int] = []
    reviews: list[str] = []
    lines: list[int] = []
    for line, record in _read_jsonl(path, _REVIEW_KEYS, _REVIEW_FORMAT):
        stamp = record["timestamp"]
        if not _is_milliseconds(stamp):
            raise SchemaError(
                f"{path} line {line}: 'timestamp' is {stamp!r}; expected {_REVIEW_FORMAT} whose "
                "timestamp is an integer count of milliseconds since 1970-01-01 UTC"
            )
        milliseconds.append(int(stamp))
        columns["user_id"].append(record["user_id"])
        columns["item_id"].append(record["parent_asin"])
        columns["rating"].append(record["rating"])
        text = [_clean(_text(record, key, path, line)) for key in ("title", "text")]
        reviews.append(truncate_words(_sentences(text), max_words))
        lines.append(line)
    table = pd.DataFrame(columns, index=pd.Index(lines, name="line"), dtype=object)
    times = pd.to_datetime(np.asarray(milliseconds, dtype=np.int64), unit="ms", utc=True)
    table.insert(2, "timestamp", times)
    return validate_interactions(table, source=lines_source(path)), reviews


def _read_jsonl(
    path: Path, required: Sequence[str], what: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line, each object having the ``required`` keys."""
    for line, text in read_lines(path, what=what):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            ends_early = not text.rstrip().endswith("}")
            cut = " (the line does not end with '}': truncated file?)" if ends_early else ""
            raise SchemaError(
                f"{path} line {line}: invalid JSON at column {error.colno}: {error.msg}{cut}; "
                f"expected {what}, one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise SchemaError(
                f"{path} line {line}: a JSON {type(record).__name__}; expected {what}, "
                "one JSON object per line"
            )
        missing = [key for key in required if key not in record]
        if missing:
            found = ", ".join(list(record)[:12]) or "none"
            raise SchemaError(
                f"{path} line {line}: missing key{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}; expected {what} with keys "
                f"{', '.join(required)}; found keys: {found}"
            )
        yield line, record


def _text(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    """A string field; absent or null -> ""."""
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SchemaError(
            f"{path} line {line}: {key!r} is {str(value)[:60]!r}; expected a string or null"
        )
    return value


def _texts(record: dict[str, Any], key: str, path: Path, line: int) -> list[str]:
    """A list-of-strings field, cleaned, empty entries dropped; absent or null -> []."""
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) or v is None for v in value):
        raise SchemaError(
            f"{path} line {line}: {key!r} is {str(value)[:60]!r}; expected a list of strings"
        )
    return [text for text in (_clean(v or "") for v in value) if text]


def _clean(text: str) -> str:
    """Unescapes HTML entities, replaces tags such as <br /> by spaces, collapses whitespace."""
    return " ".join(_HTML_TAG.sub(" ", html.unescape(text)).split())


def _sentences(parts: Sequence[str]) -> str:
    """Non-empty parts joined as sentences: a full stop is added where punctuation is missing."""
    return " ".join(p if p.endswith(_SENTENCE_END) else f"{p}." for p in parts if p)


def _is_milliseconds(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and 0 <= value <= _MAX_MILLISECONDS
    )
