"""The feedback event log: an append-only SQLite table that the server writes and training reads.

Durability: WAL journal with ``synchronous=FULL``, so an acknowledged append survives a crash or
power loss. Every value reaches SQLite as a bound parameter; nothing from a request is ever
interpreted as SQL, unpickled or executed. Event ids only grow (``AUTOINCREMENT``), so
``events_since(last_seen_id)`` is a safe cursor for incremental training.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import threading
import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

EVENT_TYPES = ("click", "view", "like", "purchase", "dislike")
NEGATIVE_EVENT_TYPES = ("dislike",)
"""Events that say "not this": they exclude the item but never add its title to the user text."""
MAX_ID_CHARS = 512
_MAX_UNIX_SECONDS = 1e10  # year 2286; larger numbers are almost always milliseconds

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ({", ".join(repr(t) for t in EVENT_TYPES)})),
    timestamp REAL NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, event_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (timestamp, event_id);
"""
_COLUMNS = "event_id, user_id, item_id, type, timestamp"


@dataclass(frozen=True)
class Event:
    """One feedback event; ``timestamp`` in unix seconds (UTC); ``event_id`` set once stored."""

    user_id: str
    item_id: str
    type: str
    timestamp: float
    event_id: int | None = None


def parse_event(data: Any, now: float | None = None) -> Event:
    """Validates one JSON event ``{"user_id", "item_id", "type", "timestamp"?}``.

    ``timestamp``: unix seconds (number or numeric string) or an ISO 8601 string (naive = UTC);
    omitted or null means ``now`` (default: the current time).

    Raises:
        ValueError: naming the field and what was expected.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"an event must be a JSON object, got {type(data).__name__}")
    fields = {"user_id", "item_id", "type", "timestamp"}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; an event has {sorted(fields)}")
    ids = {name: _identifier(data, name) for name in ("user_id", "item_id")}
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"'type' must be one of {list(EVENT_TYPES)}, got {kind!r}")
    raw_time = data.get("timestamp")
    timestamp = (time.time() if now is None else now) if raw_time is None else _unix_seconds(raw_time)
    return Event(ids["user_id"], ids["item_id"], kind, timestamp)


def parse_events(body: Any, known_item_ids: Container[str], max_events: int) -> list[Event]:
    """A feedback body (one event object, or ``{"events": [...]}``) -> events, all or none.

    Raises:
        ValueError: naming the first bad event by position, e.g. an item not in
            ``known_item_ids`` (the served catalog).
    """
    raw = body["events"] if isinstance(body, Mapping) and "events" in body else [body]
    if not isinstance(raw, list) or not raw:
        raise ValueError("'events' must be a non-empty list of event objects")
    if len(raw) > max_events:
        raise ValueError(f"{len(raw)} events exceed the limit of {max_events} per request")
    now, events = time.time(), []
    for position, data in enumerate(raw):
        try:
            event = parse_event(data, now)
        except ValueError as error:
            raise ValueError(f"event {position}: {error}") from error
        if event.item_id not in known_item_ids:
            raise ValueError(f"event {position}: unknown item_id {event.item_id!r} (not in the served catalog)")
        events.append(event)
    return events


class EventLog:
    """Append and read feedback events in a SQLite file (created if missing); thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own explicit transaction.
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute("PRAGMA busy_timeout=5000")
            self._connection.executescript(_SCHEMA)

    def append(self, events: Sequence[Event]) -> list[int]:
        """Stores events in one transaction (all or none) and returns their new event ids."""
        received_at = time.time()
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                ids = []
                for event in events:
                    cursor.execute(
                        "INSERT INTO events (user_id, item_id, type, timestamp, received_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (event.user_id, event.item_id, event.type, float(event.timestamp), received_at),
                    )
                    ids.append(int(cursor.lastrowid))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return ids

    def user_events(self, user_id: str) -> list[Event]:
        """A user's events, oldest first (ties in time keep arrival order)."""
        return self._select(
            f"SELECT {_COLUMNS} FROM events WHERE user_id = ? ORDER BY timestamp, event_id",
            (user_id,),
        )

    def events_since(
        self, after_event_id: int = 0, since_timestamp: float | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events with ``event_id > after_event_id`` (and ``timestamp >= since_timestamp``), by id.

        Feed the largest ``event_id`` seen back in to read only what arrived since.
        """
        query = f"SELECT {_COLUMNS} FROM events WHERE event_id > ?"
        parameters: list[Any] = [after_event_id]
        if since_timestamp is not None:
            query += " AND timestamp >= ?"
            parameters.append(float(since_timestamp))
        query += " ORDER BY event_id"
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(int(limit))
        return self._select(query, tuple(parameters))

    def count(self) -> int:
        """How many events are stored."""
        with self._lock:
            return int(self._connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _select(self, query: str, parameters: tuple) -> list[Event]:
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return [Event(user_id, item_id, kind, ts, event_id) for event_id, user_id, item_id, kind, ts in rows]


def events_to_interactions(events: Sequence[Event]) -> pd.DataFrame:
    """Events as an interactions table (``user_id, item_id, timestamp`` + ``type, event_id``)
    that `tfrecs_llm.data.schema.validate_interactions` accepts."""
    return pd.DataFrame(
        {
            "user_id": [e.user_id for e in events],
            "item_id": [e.item_id for e in events],
            "timestamp": [e.timestamp for e in events],
            "type": [e.type for e in events],
            "event_id": [e.event_id for e in events],
        }
    )


def _identifier(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name!r} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"{name!r} is {len(value)} characters long; at most {MAX_ID_CHARS} allowed")
    return value


def _unix_seconds(value: Any) -> float:
    expected = "expected unix seconds (not milliseconds) or an ISO 8601 string"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:  # Python 3.10 does not read a trailing "Z"
                parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
            except ValueError:
                raise ValueError(f"'timestamp' {text!r} cannot be parsed; {expected}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            return parsed.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'timestamp' must be a number or a string, got {type(value).__name__}; {expected}")
    if not math.isfinite(value) or abs(value) >= _MAX_UNIX_SECONDS:
        raise ValueError(f"'timestamp' {value!r} is out of range; {expected}")
    return float(value)
