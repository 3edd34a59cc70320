"""PNG bar charts with interval error bars (matplotlib, optional): a panel per metric, a bar per model."""

from __future__ import annotations

import logging
import math
from pathlib import Path

logger = logging.getLogger(__name__)

_MATPLOTLIB_HINT = (
    "PNG charts need matplotlib (pip install matplotlib, or the 'notebooks' or 'dev' extra); "
    "report.json and ranks.csv were written without them"
)


def have_matplotlib() -> bool:
    """Whether charts can be drawn; logs how to get them once per call when not."""
    try:
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        logger.warning(_MATPLOTLIB_HINT)
        return False
    return True


def bar_grid(
    path: Path,
    names: list[str],
    values: dict[str, list[float]],
    intervals: dict[str, list[tuple[float, float]]] | None,
    title: str,
) -> Path:
    """Writes ``path``: one panel per metric of ``values`` (metric -> a value per name in
    ``names``), error bars from ``intervals`` (metric -> ``(low, high)`` per name) if given."""
    from matplotlib.figure import Figure

    columns = min(3, len(values))
    rows = math.ceil(len(values) / columns)
    # Figure, not pyplot: no global backend switch, so this also works headless and in notebooks.
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    colors = [f"C{i % 10}" for i in range(len(names))]
    for ax, (metric, heights) in zip(axes, values.items()):
        errors = None
        if intervals is not None:
            bounds = intervals[metric]
            errors = [
                [max(0.0, h - low) for h, (low, _) in zip(heights, bounds)],
                [max(0.0, high - h) for h, (_, high) in zip(heights, bounds)],
            ]
        ax.bar(range(len(names)), heights, yerr=errors, capsize=4, color=colors)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(values) :]:
        ax.set_visible(False)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=110)
    return path


def line_chart(path: Path, series: dict[str, list[float]], title: str, xlabel: str = "epoch") -> Path | None:
    """Writes ``path``: one line per entry of ``series`` (values at x = 1, 2, ...); returns it,
    or None without matplotlib."""
    if not have_matplotlib():
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), layout="constrained")
    ax = figure.subplots()
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.savefig(path, dpi=110)
    return path
