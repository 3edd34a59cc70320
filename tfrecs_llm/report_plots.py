"""PNG bar charts of an :class:`~tfrecs_llm.report.EvaluationReport` (matplotlib, optional).

``ranking_metrics.png``: one panel per ranking metric, a bar per model with its bootstrap
interval; ``list_metrics.png``: catalog coverage, ILD and category entropy of the top-k lists;
``cold_start.png``: the ranking metrics on the cold-start slice, when it is not empty.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfrecs_llm.report import EvaluationReport

logger = logging.getLogger(__name__)

_MATPLOTLIB_HINT = (
    "PNG charts need matplotlib (pip install matplotlib, or the 'notebooks' or 'dev' extra); "
    "report.json and ranks.csv were written without them"
)


def plot_report(report: "EvaluationReport", output_dir: Path) -> list[Path]:
    """Writes the charts into ``output_dir``; returns their paths ([] without matplotlib)."""
    try:
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        logger.warning(_MATPLOTLIB_HINT)
        return []
    names = list(report.results)
    ranking = report.ranking_metric_names
    paths = [
        _bar_grid(
            output_dir / "ranking_metrics.png",
            names,
            {m: [report.results[n].metrics[m] for n in names] for m in ranking},
            {m: [report.results[n].intervals[m] for n in names] for m in ranking},
            f"Held-out ranking, {report.protocol['num_queries']} test events "
            f"({round(100 * report.protocol['confidence'])}% bootstrap intervals)",
        )
    ]
    k = report.protocol["top_k"]
    lists = [m for m in (f"catalog_coverage@{k}", f"ild@{k}", f"category_entropy@{k}")
             if all(m in report.results[n].metrics for n in names)]
    if lists:
        paths.append(
            _bar_grid(
                output_dir / "list_metrics.png",
                names,
                {m: [report.results[n].metrics[m] for n in names] for m in lists},
                None,
                f"Top-{k} lists: coverage, diversity (ILD on pretrained item-text embeddings), "
                "category entropy",
            )
        )
    cold = report.protocol["num_cold_start_queries"]
    if cold:
        paths.append(
            _bar_grid(
                output_dir / "cold_start.png",
                names,
                {m: [report.results[n].cold_start[m] for n in names] for m in ranking},
                {m: [report.results[n].cold_start_intervals[m] for n in names] for m in ranking},
                f"Cold-start slice: {cold} test events whose item has no train event",
            )
        )
    return paths


def _bar_grid(
    path: Path,
    names: list[str],
    values: dict[str, list[float]],
    intervals: dict[str, list[tuple[float, float]]] | None,
    title: str,
) -> Path:
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
