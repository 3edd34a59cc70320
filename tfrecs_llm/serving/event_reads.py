"""The reads both event-log backends share, written once over the driver's parameter mark."""

from __future__ import annotations

from typing import Any

from tfrecs_llm.data.events import Event

COLUMNS = "event_id, user_id, item_id, type, timestamp, client_event_id"


class EventReads:
    """``user_events`` and ``events_since`` over ``_rows(query, parameters)``; a backend sets
    ``mark`` (its driver's parameter placeholder) and implements ``_rows``."""

    mark = "?"

    def _rows(self, query: str, parameters: tuple) -> list[tuple]:
        raise NotImplementedError

    def user_events(self, user_id: str, limit: int | None = None) -> list[Event]:
        """A user's events, oldest first (ties in time keep arrival order); with ``limit``, only
        the ``limit`` most recent ones (read through the ``events_by_user`` index)."""
        m = self.mark
        if limit is None:
            return self._select(
                f"SELECT {COLUMNS} FROM events WHERE user_id = {m} ORDER BY timestamp, event_id", (user_id,)
            )
        newest = self._select(
            f"SELECT {COLUMNS} FROM events WHERE user_id = {m} ORDER BY timestamp DESC, event_id DESC LIMIT {m}",
            (user_id, int(limit)),
        )
        return newest[::-1]

    def events_since(
        self, after_event_id: int = 0, since_timestamp: float | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events with ``event_id > after_event_id`` (and ``timestamp >= since_timestamp``), by id.

        Feed the largest ``event_id`` seen back in to read only what arrived since.
        """
        m = self.mark
        query = f"SELECT {COLUMNS} FROM events WHERE event_id > {m}"
        parameters: list[Any] = [after_event_id]
        if since_timestamp is not None:
            query += f" AND timestamp >= {m}"
            parameters.append(float(since_timestamp))
        query += " ORDER BY event_id"
        if limit is not None:
            query += f" LIMIT {m}"
            parameters.append(int(limit))
        return self._select(query, tuple(parameters))

    def _select(self, query: str, parameters: tuple) -> list[Event]:
        return [Event(user_id, item_id, kind, float(ts), int(event_id), client_id)
                for event_id, user_id, item_id, kind, ts, client_id in self._rows(query, parameters)]
