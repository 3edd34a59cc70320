"""Request batching, TF Serving's way: concurrent calls of one signature run as one batch.

The parameters have TF Serving's names and meaning (``--enable_batching
--batching_parameters_file``): a batch closes when it holds ``max_batch_size`` rows or
``batch_timeout_micros`` after its first request arrived; ``num_batch_threads`` batches run at
once; at most ``max_enqueued_batches`` batches wait (more requests are refused, UNAVAILABLE);
``allowed_batch_sizes`` pads each batch up to the next listed size (programs compiled for fixed
sizes, e.g. XLA, then see only those). Requests' string matrices of different widths
(``exclude_item_ids``, ``history_item_ids``) are padded with ``""``, which every signature
ignores, and each request gets exactly its own rows back. A batch that fails runs its requests
one by one, so one bad request never fails the others.

With ``dispatch_when_idle`` (the local server's default), a batch also starts as soon as a batch
thread is free, and while all of them are busy it keeps growing instead of closing at its
timeout: one request alone pays no timeout, and under load batches fill up by themselves.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tfrecs_llm.export.batching_config import BatchingParameters
from tfrecs_llm.serving.errors import ServingError

Execute = Callable[[str, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
_WAKE = "wake"  # queued by a finished batch: a batch thread is free


@dataclass
class _Task:
    signature: str
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs ``execute(signature, inputs)`` on merged batches of concurrent :meth:`run` calls."""

    def __init__(self, execute: Execute, parameters: BatchingParameters) -> None:
        self.parameters = parameters
        self._execute = execute
        self._queue: "queue.Queue[_Task | str | None]" = queue.Queue()
        self._waiting = threading.Semaphore(parameters.max_enqueued_batches * parameters.max_batch_size)
        self._pool = ThreadPoolExecutor(parameters.num_batch_threads, thread_name_prefix="batch")
        self._busy = 0  # batches submitted and not finished; changed under _busy_lock
        self._busy_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._collect, name="batch-scheduler", daemon=True)
        self._thread.start()

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for ``inputs`` alone, computed in a batch with concurrent calls."""
        rows = len(next(iter(inputs.values()))) if inputs else 0
        if self._closed or rows == 0 or rows >= self.parameters.max_batch_size:
            return self._execute(signature, inputs)
        if not self._waiting.acquire(blocking=False):
            raise ServingError("the batch scheduling queue is full; retry later", "UNAVAILABLE")
        task = _Task(signature, inputs, rows)
        self._queue.put(task)
        return task.future.result()

    def close(self) -> None:
        """Runs what is queued, then stops; later calls run unbatched."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _collect(self) -> None:
        pending: dict[str, list[_Task]] = {}
        opened: dict[str, float] = {}
        timeout = self.parameters.batch_timeout_micros / 1e6
        idle_dispatch = self.parameters.dispatch_when_idle
        while True:
            # Waiting for a timeout only matters when a batch may close at it.
            waits = [] if idle_dispatch and not self._free() else [opened[s] + timeout - time.monotonic() for s in pending]
            try:
                task = self._queue.get(timeout=max(0.0, min(waits)) if waits else None)
            except queue.Empty:
                task = False
            if task is None:
                for tasks in pending.values():
                    self._submit(tasks)
                return
            if isinstance(task, _Task):
                batch = pending.setdefault(task.signature, [])
                if sum(t.rows for t in batch) + task.rows > self.parameters.max_batch_size:
                    self._submit(pending.pop(task.signature))
                    opened.pop(task.signature)
                    batch = pending.setdefault(task.signature, [])
                batch.append(task)
                opened.setdefault(task.signature, time.monotonic())
            now = time.monotonic()
            for signature in sorted(pending, key=opened.__getitem__):  # oldest batch first
                full = sum(t.rows for t in pending[signature]) >= self.parameters.max_batch_size
                due = self._free() if idle_dispatch else now >= opened[signature] + timeout
                if full or due:
                    self._submit(pending.pop(signature))
                    opened.pop(signature)

    def _free(self) -> bool:
        with self._busy_lock:
            return self._busy < self.parameters.num_batch_threads

    def _submit(self, tasks: list[_Task]) -> None:
        with self._busy_lock:
            self._busy += 1
        self._pool.submit(self._run_batch, tasks)

    def _run_batch(self, tasks: list[_Task]) -> None:
        self._waiting.release(len(tasks))  # running, no longer waiting
        try:
            self._run_tasks(tasks)
        finally:
            with self._busy_lock:
                self._busy -= 1
            self._queue.put(_WAKE)  # the scheduler may start the next batch now

    def _run_tasks(self, tasks: list[_Task]) -> None:
        try:
            merged, total = merge([t.inputs for t in tasks], self.parameters.allowed_batch_sizes)
            outputs = self._execute(tasks[0].signature, merged)
        except Exception:  # run alone: each request gets its own answer or its own error
            for task in tasks:
                try:
                    task.future.set_result(self._execute(task.signature, task.inputs))
                except Exception as error:
                    task.future.set_exception(error)
            return
        start = 0
        for task in tasks:
            task.future.set_result({name: value[start : start + task.rows] for name, value in outputs.items()})
            start += task.rows


def merge(requests: Sequence[Mapping[str, np.ndarray]], allowed_sizes: Sequence[int] = ()) -> tuple[dict, int]:
    """One input dict of the requests' rows, string matrices padded with ``""`` to one width,
    the batch padded (repeating its last row) up to the next of ``allowed_sizes``; and the
    number of real rows."""
    merged = {}
    total = sum(len(next(iter(r.values()))) for r in requests)
    target = next((size for size in allowed_sizes if size >= total), total)
    for name in requests[0]:
        arrays = [np.asarray(r[name]) for r in requests]
        if arrays[0].ndim == 2 and arrays[0].dtype == object:
            width = max(a.shape[1] for a in arrays)
            arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=b"") if a.shape[1] < width else a
                      for a in arrays]
        stacked = np.concatenate(arrays)
        if target > total:
            stacked = np.concatenate([stacked, np.repeat(stacked[-1:], target - total, axis=0)])
        merged[name] = stacked
    return merged, total
