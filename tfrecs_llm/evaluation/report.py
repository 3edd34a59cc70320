"""The result of ``tfrecs_llm.evaluate``: per-model metrics with intervals, per-query ranks,
and its outputs (``report.json``, ``ranks.csv``, PNG charts, a console table)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrecs_llm.evaluation.plots import bar_grid, have_matplotlib
from tfrecs_llm.evaluation.protocol import per_query_metrics


@dataclass
class ModelResult:
    """One model's (or baseline's) held-out evaluation.

    ``ranks: [num_queries]`` 0-based rank of each held-out item (ties against it);
    ``metrics``: ranking means over all queries plus the top-k list metrics (catalog coverage,
    ILD, category entropy); ``intervals``: bootstrap ``(low, high)`` of each ranking metric;
    ``cold_start`` / ``cold_start_intervals``: the same ranking metrics on the queries whose item
    has no train event (empty when there are none); ``seconds``: ``fit`` (building or training
    the scorer) and ``score`` (scoring and ranking every query).
    """

    ranks: np.ndarray
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    cold_start: dict[str, float] = field(default_factory=dict)
    cold_start_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "intervals": {name: list(bounds) for name, bounds in self.intervals.items()},
            "cold_start": {
                "metrics": self.cold_start,
                "intervals": {name: list(bounds) for name, bounds in self.cold_start_intervals.items()},
            },
            "seconds": self.seconds,
        }


@dataclass
class EvaluationReport:
    """Every evaluated model under one protocol.

    ``protocol``: how the numbers were made (split, sizes, ks, bootstrap settings);
    ``queries``: one row per held-out event, ``user_id, item_id, cold_start``, aligned with
    every result's ``ranks``; ``results``: name (``model``, ``popularity``, ...) -> result.
    """

    protocol: dict[str, Any]
    queries: pd.DataFrame
    results: dict[str, ModelResult]

    def __getitem__(self, name: str) -> ModelResult:
        if name not in self.results:
            raise KeyError(f"no result named {name!r}; the report has {list(self.results)}")
        return self.results[name]

    @property
    def ranking_metric_names(self) -> list[str]:
        """``recall@k``, ``ndcg@k`` for each k, then ``mrr``."""
        return list(per_query_metrics(np.zeros(1), self.protocol["ks"]))

    def per_query(self, name: str) -> dict[str, np.ndarray]:
        """Metric -> ``[num_queries]`` values of result ``name`` (aligned with ``queries``), for
        paired comparisons and custom slices."""
        return per_query_metrics(self[name].ranks, self.protocol["ks"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "models": {name: result.to_dict() for name, result in self.results.items()},
        }

    def save(self, output_dir: str | Path) -> list[Path]:
        """Writes ``report.json``, ``ranks.csv`` (one row per held-out event, a ``rank:<name>``
        column per result) and PNG bar charts; returns the paths written."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        report_path = output_dir / "report.json"
        report_path.write_text(json.dumps(self.to_dict(), indent=2))
        ranks = self.queries.copy()
        for name, result in self.results.items():
            ranks[f"rank:{name}"] = result.ranks
        ranks_path = output_dir / "ranks.csv"
        ranks.to_csv(ranks_path, index=False)
        return [report_path, ranks_path, *self.charts(output_dir)]

    def format_table(self) -> str:
        """Console tables: ranking metrics with intervals, then list and cold-start metrics."""
        protocol = self.protocol
        lines = [
            f"held-out evaluation: {protocol['num_queries']} test events (each user's last), "
            f"{protocol['num_items']} items, full catalog, the user's train items excluded; "
            f"{round(100 * protocol['confidence'])}% bootstrap intervals over queries",
        ]
        names = self.ranking_metric_names
        width = max(len(name) for name in self.results) + 2
        lines.append(" " * width + "".join(f"{n:<22}" for n in names))
        for model, result in self.results.items():
            cells = [f"{result.metrics[n]:.3f} [{result.intervals[n][0]:.3f}, {result.intervals[n][1]:.3f}]"
                     for n in names]
            lines.append(f"{model:<{width}}" + "".join(f"{c:<22}" for c in cells))
        k = protocol["top_k"]
        lists = [n for n in (f"catalog_coverage@{k}", f"ild@{k}", f"category_entropy@{k}")
                 if any(n in r.metrics for r in self.results.values())]
        cold = protocol["num_cold_start_queries"]
        cold_names = [f"recall@{protocol['ks'][0]}", "mrr"]
        columns = lists + [f"cold {n} (n={cold})" for n in cold_names] + ["fit s", "score s"]
        lines.append("")
        widths = [len(c) + 3 for c in columns]
        lines.append(" " * width + "".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
        for model, result in self.results.items():
            values = [result.metrics.get(n) for n in lists]
            values += [result.cold_start.get(n) for n in cold_names]
            cells = [f"{v:.3f}" if v is not None else "-" for v in values]
            cells += [f"{result.seconds.get('fit', 0.0):.1f}", f"{result.seconds.get('score', 0.0):.1f}"]
            lines.append(f"{model:<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
        return "\n".join(lines)

    def charts(self, output_dir: Path) -> list[Path]:
        """Writes ``ranking_metrics.png`` (a panel per ranking metric, a bar per model with its
        bootstrap interval), ``list_metrics.png`` (catalog coverage, ILD and category entropy of
        the top-k lists) and ``cold_start.png`` (the ranking metrics on the cold-start slice,
        when it is not empty); returns their paths ([] without matplotlib)."""
        if not have_matplotlib():
            return []
        names = list(self.results)
        ranking = self.ranking_metric_names
        paths = [
            bar_grid(
                output_dir / "ranking_metrics.png",
                names,
                {m: [self.results[n].metrics[m] for n in names] for m in ranking},
                {m: [self.results[n].intervals[m] for n in names] for m in ranking},
                f"Held-out ranking, {self.protocol['num_queries']} test events "
                f"({round(100 * self.protocol['confidence'])}% bootstrap intervals)",
            )
        ]
        k = self.protocol["top_k"]
        lists = [m for m in (f"catalog_coverage@{k}", f"ild@{k}", f"category_entropy@{k}")
                 if all(m in self.results[n].metrics for n in names)]
        if lists:
            paths.append(
                bar_grid(
                    output_dir / "list_metrics.png",
                    names,
                    {m: [self.results[n].metrics[m] for n in names] for m in lists},
                    None,
                    f"Top-{k} lists: coverage, diversity (ILD on pretrained item-text embeddings), "
                    "category entropy",
                )
            )
        cold = self.protocol["num_cold_start_queries"]
        if cold:
            paths.append(
                bar_grid(
                    output_dir / "cold_start.png",
                    names,
                    {m: [self.results[n].cold_start[m] for n in names] for m in ranking},
                    {m: [self.results[n].cold_start_intervals[m] for n in names] for m in ranking},
                    f"Cold-start slice: {cold} test events whose item has no train event",
                )
            )
        return paths
