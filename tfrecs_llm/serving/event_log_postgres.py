"""The feedback event log in PostgreSQL (psycopg 3), for several server replicas sharing events.

The same contract as the SQLite `EventLog`: appends are one transaction each (all or none,
durable at commit), an event whose ``client_event_id`` is stored already is stored once (retries
are idempotent, across replicas too), a user's recent history is read through an index, and
``events_since(last_id)`` is a safe cursor. For the cursor, appends take a transaction-level
advisory lock: a sequence alone hands out ids in one order and commits them in another, so a
reader could see id 11 before id 10 commits, and skip 10 for ever. The schema is versioned
(table ``tfrecs_llm_schema``) and migrated on open, under an advisory lock so that replicas
starting together migrate once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from tfrecs_llm.data.events import EVENT_TYPES, Event
from tfrecs_llm.serving.event_reads import EventReads

_TYPES = ", ".join(repr(t) for t in EVENT_TYPES)
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE events (
        event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ({_TYPES})),
        timestamp DOUBLE PRECISION NOT NULL,
        received_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX events_by_user ON events (user_id, timestamp, event_id);
    CREATE INDEX events_by_time ON events (timestamp, event_id)
    """,
    """
    ALTER TABLE events ADD COLUMN client_event_id TEXT;
    CREATE UNIQUE INDEX events_by_client_id ON events (client_event_id)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 7_310_001  # advisory lock keys of this package
_APPEND_LOCK = 7_310_002


def is_postgres_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


class PostgresEventLog(EventReads):
    """Append and read feedback events in PostgreSQL; thread-safe (a connection pool).

    Args:
        url: ``postgresql://user[:password]@host:port/database`` (libpq's URI form).
        max_connections: size of the pool (requests beyond it wait for a free connection).
        timeout: seconds to wait for the database (connect, or a free connection).

    Raises:
        ConnectionError: the database cannot be reached, on open or later (the message names
            it, without password).
        ValueError: (on open) the database holds a newer schema than this package knows.
    """

    mark = "%s"

    def __init__(self, url: str, max_connections: int = 8, timeout: float = 10.0) -> None:
        from psycopg_pool import ConnectionPool

        if not is_postgres_url(url):
            raise ValueError(f"expected a postgresql://user@host:port/database URL, got {url!r}")
        self.location = _without_password(url)
        import psycopg

        try:  # one direct attempt first: a refused connection is reported at once, with libpq's reason
            psycopg.connect(url, connect_timeout=max(1, int(timeout))).close()
        except psycopg.Error as error:
            reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
            raise ConnectionError(f"cannot connect to the event database {self.location}: {reason}") from error
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=timeout, open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception as error:  # psycopg_pool.PoolTimeout, psycopg.OperationalError
            self._pool.close()
            raise ConnectionError(f"cannot connect to the event database {self.location}: {error}") from error
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @property
    def schema_version(self) -> int:
        with self._connected() as connection:
            return int(connection.execute("SELECT max(version) FROM tfrecs_llm_schema").fetchone()[0])

    def append(self, events: Sequence[Event]) -> list[int]:
        """Stores events in one transaction (all or none) and returns their event ids; an event
        whose ``client_event_id`` is already stored is skipped and gets the stored event's id."""
        received_at = time.time()
        ids = []
        with self._connected() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            for event in events:
                row = connection.execute(
                    "INSERT INTO events (user_id, item_id, type, timestamp, received_at, client_event_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (client_event_id) DO NOTHING RETURNING event_id",
                    (event.user_id, event.item_id, event.type, float(event.timestamp), received_at,
                     event.client_event_id),
                ).fetchone()
                if row is None:
                    row = connection.execute(
                        "SELECT event_id FROM events WHERE client_event_id = %s", (event.client_event_id,)
                    ).fetchone()
                ids.append(int(row[0]))
        return ids

    def count(self) -> int:
        """How many events are stored."""
        with self._connected() as connection:
            return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "PostgresEventLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Any]:
        """A pooled connection; an unreachable database raises ConnectionError naming it."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise ConnectionError(f"the event database {self.location} is unreachable: {error}") from error

    def _migrate(self) -> None:
        with self._connected() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS tfrecs_llm_schema (version INTEGER NOT NULL)")
            version = int(connection.execute("SELECT coalesce(max(version), 0) FROM tfrecs_llm_schema").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"{self.location} holds event-log schema version {version}; this tfrecs_llm knows up "
                    f"to {SCHEMA_VERSION}: upgrade tfrecs_llm to read it"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute("INSERT INTO tfrecs_llm_schema (version) VALUES (%s)", (step + 1,))

    def _rows(self, query: str, parameters: tuple) -> list[tuple]:
        with self._connected() as connection:
            return connection.execute(query, parameters).fetchall()


def _without_password(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
