"""TF Serving's batching parameters (``--batching_parameters_file``), as data and as its text
proto; every export writes a recommended ``assets.extra/batching_parameters.txt``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FILE_NAME = "batching_parameters.txt"


@dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's ``BatchingParameters`` (the fields this server uses), and the local
    server's own scheduling choice ``dispatch_when_idle`` (not part of TF Serving's file).

    dispatch_when_idle: the local server starts a batch at once when a batch thread is free,
        and while every thread is busy keeps adding requests to it (up to ``max_batch_size``):
        a lone request never waits for ``batch_timeout_micros``, and batches grow with the
        load. False: TF Serving's rule (a batch closes when full or at its timeout).
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple[int, ...] = field(default_factory=tuple)
    dispatch_when_idle: bool = True

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching: {name} must be >= 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batching: batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size or sizes[0] < 1):
            raise ValueError(
                "batching: allowed_batch_sizes must increase and end with max_batch_size "
                f"({self.max_batch_size}), got {sizes}"
            )

    def to_text(self) -> str:
        """The text proto TF Serving's ``--batching_parameters_file`` reads."""
        lines = [f"{name} {{ value: {getattr(self, name)} }}"
                 for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        lines.append("pad_variable_length_inputs: true")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str = "batching parameters") -> "BatchingParameters":
        """Parses the text proto :meth:`to_text` writes (TF Serving's format)."""
        values: dict = {}
        sizes: list[int] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#")[0].strip()
            if not line:
                continue
            wrapped = re.fullmatch(r"(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}", line)
            plain = re.fullmatch(r"(\w+)\s*:\s*(\w+)", line)
            if wrapped and wrapped.group(1) in ("max_batch_size", "batch_timeout_micros",
                                                "max_enqueued_batches", "num_batch_threads"):
                values[wrapped.group(1)] = int(wrapped.group(2))
            elif plain and plain.group(1) == "allowed_batch_sizes" and plain.group(2).isdigit():
                sizes.append(int(plain.group(2)))
            elif plain and plain.group(1) == "pad_variable_length_inputs":
                continue
            else:
                raise ValueError(f"{source}: line {number}: cannot read {line!r}; expected e.g. "
                                 "'max_batch_size { value: 32 }' or 'allowed_batch_sizes: 8'")
        return cls(**values, allowed_batch_sizes=tuple(sizes))

    @classmethod
    def from_file(cls, path: str | Path) -> "BatchingParameters":
        return cls.from_text(Path(path).read_text(), str(path))
