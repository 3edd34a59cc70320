"""Choosing an event-log backend: a SQLite file (the default) or a PostgreSQL URL.

Both backends have the same methods (`EventStore`); the server, ``update`` and the user-text
builder read either.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tfrecs_llm.data.events import Event
from tfrecs_llm.serving.event_log_postgres import is_postgres_url


class EventStore(Protocol):
    """What the server and training use of an event log (see `EventLog`, `PostgresEventLog`)."""

    location: str

    def append(self, events: Sequence[Event]) -> list[int]: ...

    def user_events(self, user_id: str, limit: int | None = None) -> list[Event]: ...

    def events_since(
        self, after_event_id: int = 0, since_timestamp: float | None = None, limit: int | None = None
    ) -> list[Event]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_event_log(location: str | Path, *, must_exist: bool = False, timeout: float = 10.0) -> EventStore:
    """The event log at ``location``: ``postgresql://user@host:port/db``, or a SQLite file path
    (created if missing, unless ``must_exist``); ``timeout``: seconds to wait for PostgreSQL.

    Raises:
        FileNotFoundError: ``must_exist`` and there is no such SQLite file.
        ConnectionError: the PostgreSQL database cannot be reached.
        ValueError: not an event log, or one with a newer schema; or the ``postgres`` extra
            (psycopg) is not installed.
    """
    if is_postgres_url(str(location)):
        try:
            from tfrecs_llm.serving.event_log_postgres import PostgresEventLog

            import psycopg  # noqa: F401
        except ImportError as error:
            raise ValueError(
                "a PostgreSQL event log needs the 'postgres' extra: pip install 'tfrecs_llm[postgres]'"
            ) from error
        return PostgresEventLog(str(location), timeout=timeout)
    import sqlite3

    from tfrecs_llm.serving.event_log import EventLog

    path = Path(location)
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected a SQLite feedback log of `tfrecs-llm serve`")
    try:
        return EventLog(path)
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{path} is not a feedback log (SQLite): {error}") from error
