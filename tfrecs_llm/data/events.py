"""Feedback events: what one is, how a request's JSON becomes one, and how events become an
interactions table. The server validates with these; training and ``update`` read the same types.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

EVENT_TYPES = ("click", "view", "like", "purchase", "dislike")
NEGATIVE_EVENT_TYPES = ("dislike",)
"""Events that say "not this": they exclude the item but never add its title to the user text."""
MAX_ID_CHARS = 512
_MAX_UNIX_SECONDS = 1e10  # year 2286; larger numbers are almost always milliseconds


@dataclass(frozen=True)
class Event:
    """One feedback event; ``timestamp`` in unix seconds (UTC); ``event_id`` set once stored.

    ``client_event_id``: the sender's own id for the event (optional). An event log stores an
    event with a given client id once: a retried request returns the first one's ``event_id``.
    """

    user_id: str
    item_id: str
    type: str
    timestamp: float
    event_id: int | None = None
    client_event_id: str | None = None


def parse_event(data: Any, now: float | None = None) -> Event:
    """Validates one JSON event ``{"user_id", "item_id", "type", "timestamp"?, "client_event_id"?}``.

    ``timestamp``: unix seconds (number or numeric string) or an ISO 8601 string (naive = UTC);
    omitted or null means ``now`` (default: the current time). ``client_event_id``: the
    sender's id for the event, so that a retried request is stored once (see `Event`).

    Raises:
        ValueError: naming the field and what was expected.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"an event must be a JSON object, got {type(data).__name__}")
    fields = {"user_id", "item_id", "type", "timestamp", "client_event_id"}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; an event has {sorted(fields)}")
    ids = {name: _identifier(data, name) for name in ("user_id", "item_id")}
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"'type' must be one of {list(EVENT_TYPES)}, got {kind!r}")
    raw_time = data.get("timestamp")
    timestamp = (time.time() if now is None else now) if raw_time is None else _unix_seconds(raw_time)
    client_id = _identifier(data, "client_event_id") if data.get("client_event_id") is not None else None
    return Event(ids["user_id"], ids["item_id"], kind, timestamp, client_event_id=client_id)


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


def positive_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events that say "this", i.e. without the ``type`` values in ``NEGATIVE_EVENT_TYPES``.

    Negative events (dislikes) are neither trained on nor part of user texts, as on the server.
    """
    if "type" not in events.columns:
        return events
    return events[~events["type"].isin(NEGATIVE_EVENT_TYPES).to_numpy()]


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
