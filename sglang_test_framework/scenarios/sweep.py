"""Parameter sweeps: one NodeTest per grid point; restartable (finished points are skipped)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.sweep_config import SweepConfig, safe_name
from ..errors import FrameworkError
from .node import NodeTest

__all__ = ["SweepResult", "run_sweep"]

logger = logging.getLogger(__name__)

SWEEP_COLUMNS = (
    "completed",
    "failed",
    "request_throughput",
    "output_throughput",
    "mean_ttft",
    "p99_ttft",
    "mean_itl",
    "p99_itl",
    "mean_tpot",
    "p50_server_latency",
    "p99_server_latency",
    "mean_queue_time",
    "cache_hit_rate",
    "max_in_flight",
)


@dataclass
class SweepResult:
    """The combined table (one row per point) and where things were written."""

    table: pd.DataFrame
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]
    files: dict[str, Path] = field(default_factory=dict)

    def to_text(self) -> str:
        """Aligned plain-text table."""
        return str(self.table.to_string(float_format=lambda v: f"{v:,.2f}"))


def _row(point_name: str, overrides: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point": point_name}
    row.update({k.lstrip("-"): v for k, v in overrides.items()})
    for col in SWEEP_COLUMNS:
        key = col if col in summary else col.replace("p50_", "median_")
        row[col] = summary.get(key)
    return row


def run_sweep(config: SweepConfig, plots: bool = True) -> SweepResult:
    """Run every point not yet finished, then write ``sweep.csv``, ``sweep.txt`` and plots.

    A point is finished when ``points/<name>.json`` exists (written atomically at the end of its run);
    a point whose server fails to start is reported in ``failed`` and retried on the next run.
    """
    points_dir = config.output_dir / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    rows, ran, skipped, failed = [], [], [], {}
    for point in config.points():
        path = points_dir / f"{safe_name(point.name)}.json"
        if path.exists():
            skipped.append(point.name)
        else:
            try:
                NodeTest(config.point_config(point), output_file=path).run()
            except FrameworkError as exc:
                logger.error("sweep point %s failed: %s", point.name, exc)
                failed[point.name] = str(exc).splitlines()[0]
                continue
            ran.append(point.name)
        summary = json.loads(path.read_text().splitlines()[-1])
        rows.append(_row(point.name, point.overrides, summary))
    table = pd.DataFrame(rows)
    result = SweepResult(table, ran, skipped, failed)
    result.files["csv"] = config.output_dir / "sweep.csv"
    table.to_csv(result.files["csv"], index=False)
    result.files["text"] = config.output_dir / "sweep.txt"
    result.files["text"].write_text(result.to_text() + "\n")
    if plots and not table.empty:
        from ..analysis.sweep_plots import plot_sweep

        for path in plot_sweep(table, list(config.grid), config.output_dir / "plots"):
            result.files[f"plot_{path.stem}"] = path
    return result
