"""A daemon thread that calls a function every few seconds until stopped (version polling)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Poller:
    """Calls ``poll()`` every ``seconds`` in a daemon thread named ``name``, between
    :meth:`start` and :meth:`stop`; ``poll`` must handle its own errors (a raise ends the thread)."""

    def __init__(self, poll: Callable[[], object], seconds: float, name: str) -> None:
        self._poll, self._seconds, self._name = poll, seconds, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops polling; waits for a poll under way to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            self._poll()
