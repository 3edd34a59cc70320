"""The feedback event log in SQLite (the default backend): an append-only table that the server
writes and training reads.

Durability: WAL journal with ``synchronous=FULL``, so an acknowledged append survives a crash or
power loss. Every value reaches SQLite as a bound parameter; nothing from a request is ever
interpreted as SQL, unpickled or executed. Event ids only grow (``AUTOINCREMENT``, one writer at
a time), so ``events_since(last_seen_id)`` is a safe cursor for incremental training. The schema
is versioned (``PRAGMA user_version``) and migrated on open; an event with a ``client_event_id``
already stored is not stored again (retries are idempotent).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tfrecs_llm.data.events import EVENT_TYPES, Event
from tfrecs_llm.serving.event_reads import EventReads

_TYPES = ", ".join(repr(t) for t in EVENT_TYPES)
MIGRATIONS: tuple[str, ...] = (
    # 1: the events table (files from before versioning hold exactly this, at user_version 0).
    f"""
    CREATE TABLE IF NOT EXISTS events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ({_TYPES})),
        timestamp REAL NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, event_id);
    CREATE INDEX IF NOT EXISTS events_by_time ON events (timestamp, event_id);
    """,
    # 2: the sender's event id, stored once.
    """
    ALTER TABLE events ADD COLUMN client_event_id TEXT;
    CREATE UNIQUE INDEX events_by_client_id ON events (client_event_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class EventLog(EventReads):
    """Append and read feedback events in a SQLite file (created if missing); thread-safe.

    Raises (on open):
        ValueError: the file holds a newer schema than this version of the package knows.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own explicit transaction.
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute("PRAGMA busy_timeout=5000")
            self._migrate()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def append(self, events: Sequence[Event]) -> list[int]:
        """Stores events in one transaction (all or none) and returns their event ids; an event
        whose ``client_event_id`` is already stored is skipped and gets the stored event's id."""
        received_at = time.time()
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                ids = []
                for event in events:
                    cursor.execute(
                        "INSERT INTO events (user_id, item_id, type, timestamp, received_at, client_event_id) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_event_id) DO NOTHING",
                        (event.user_id, event.item_id, event.type, float(event.timestamp), received_at,
                         event.client_event_id),
                    )
                    if cursor.rowcount == 1:
                        ids.append(int(cursor.lastrowid))
                    else:
                        row = cursor.execute(
                            "SELECT event_id FROM events WHERE client_event_id = ?", (event.client_event_id,)
                        ).fetchone()
                        ids.append(int(row[0]))
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return ids

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

    def _migrate(self) -> None:
        """Brings the file to `SCHEMA_VERSION`, one transaction per step (a crash keeps a whole step)."""
        while True:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                version = int(self._connection.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise ValueError(
                        f"{self.path} holds event-log schema version {version}; this tfrecs_llm knows up "
                        f"to {SCHEMA_VERSION}: upgrade tfrecs_llm to read it"
                    )
                if version == SCHEMA_VERSION:
                    self._connection.execute("COMMIT")
                    return
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._connection.execute(statement)
                self._connection.execute(f"PRAGMA user_version = {version + 1}")
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise

    def _rows(self, query: str, parameters: tuple) -> list[tuple]:
        with self._lock:
            return self._connection.execute(query, parameters).fetchall()
