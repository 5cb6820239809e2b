"""The saturation sweep: from a low rate up to saturation, the throughput–latency curve and its knee.

A burst (``request_rate=inf``) first measures the server's throughput C (completed / duration). Then
probes at rates evenly spaced from ``low_fraction``·C to ``high_fraction``·C, each sized by time and
measured over its steady-state window, run in order until ``stop_after_saturated`` of them are
over-saturated (metrics/saturation.py). The knee is the step with the highest achieved rate that was not
over-saturated: the most the server sustains before latency grows without bound. The sweep writes into
its own directory: ``saturation.csv``, ``saturation.txt``, ``saturation.json``,
``plots/saturation_curve.png``, ``report.html`` and one run directory per probe under ``probes/``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.node_config import NodeConfig
from ..config.search_config import SaturationSweepConfig
from ..fileio import write_json_atomic, write_text_atomic
from ..servers.manager import kill_all_processes
from .probe import ProbeOutcome, ProbeSeries, probe_config, probe_series
from .run_dir import RunStatus
from .signals import run_with_signals

__all__ = ["STEP_COLUMNS", "SaturationResult", "run_saturation_sweep"]

logger = logging.getLogger(__name__)

STEP_COLUMNS: tuple[str, ...] = (
    "step",
    "target_rate",
    "offered_rate",
    "achieved_rate",
    "output_throughput",
    "median_server_latency",
    "p99_server_latency",
    "mean_ttft",
    "p99_ttft",
    "mean_tpot",
    "completed",
    "failed",
    "saturated",
    "knee",
    "saturation_reason",
    "output_dir",
)
"""The per-step table's columns (latencies in ms, rates in req/s, output throughput in tok/s)."""


@dataclass
class SaturationResult:
    """The burst's throughput, the per-step table (:data:`STEP_COLUMNS`), the knee's row index (None when
    every step was over-saturated) and the files written."""

    capacity_rate: float
    table: pd.DataFrame
    knee_index: int | None
    context: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def knee_rate(self) -> float | None:
        """The knee's achieved rate (req/s)."""
        return None if self.knee_index is None else float(self.table["achieved_rate"].iloc[self.knee_index])

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON): capacity, knee, notes and the steps."""
        rows = self.table.astype(object).where(self.table.notna(), None).to_dict(orient="records")
        knee = rows[self.knee_index] if self.knee_index is not None else None
        return {"capacity_rate": self.capacity_rate, "knee": knee, "notes": self.notes, "steps": rows}

    def headline(self) -> str:
        """The burst throughput and the knee, one line each."""
        lines = [f"burst throughput (request_rate=inf): {self.capacity_rate:.2f} req/s"]
        if self.knee_index is not None:
            row = self.table.iloc[self.knee_index]
            lines.append(
                f"knee: step {row['step']} — achieved {row['achieved_rate']:.2f} req/s of {row['offered_rate']:.2f} "
                f"offered, P99 server latency {row['p99_server_latency']:.1f} ms: the highest rate that keeps up"
            )
        else:
            lines.append("knee: none (no step kept up)")
        return "\n".join(lines)

    def to_text(self) -> str:
        """The step table, then :meth:`headline` and the notes."""
        from ..analysis.report import format_table

        columns = [c for c in STEP_COLUMNS if c not in ("output_dir", "saturation_reason")]
        rows = [{str(k): v for k, v in row.items()} for row in self.table.to_dict(orient="records")]
        lines = [format_table(rows, columns), self.headline()]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _row(step: int, outcome: ProbeOutcome) -> dict[str, Any]:
    s = outcome.summary
    row: dict[str, Any] = {"step": step, "target_rate": outcome.rate}
    for key in STEP_COLUMNS[2:]:
        row[key] = s.get(key)
    row["knee"] = False
    row["output_dir"] = str(outcome.output_dir)
    return row


def _burst_size(sweep: SaturationSweepConfig, context: dict[str, Any]) -> int:
    if sweep.capacity_requests is not None:
        return sweep.capacity_requests
    running = context.get("max_running_requests")
    return max(sweep.min_requests, 4 * int(running) if isinstance(running, int) else 0)


async def _sweep(series: ProbeSeries, sweep: SaturationSweepConfig, result: SaturationResult) -> None:
    size = _burst_size(sweep, series.context)
    burst = await series.run(math.inf, label=f"burst of {size} requests", burst_requests=size)
    result.capacity_rate = burst.value("request_throughput") or 0.0
    if result.capacity_rate <= 0:
        result.notes.append("the burst completed nothing: no rates to sweep")
        return
    rates = np.linspace(sweep.low_fraction, sweep.high_fraction, sweep.steps) * result.capacity_rate
    rows: list[dict[str, Any]] = []
    saturated = 0
    for step, rate in enumerate(rates, 1):
        outcome = await series.run(float(rate), label=f"step {step}/{sweep.steps}: {rate:.3g} req/s")
        rows.append(_row(step, outcome))
        result.table = pd.DataFrame(rows, columns=list(STEP_COLUMNS))
        logger.info("step %d: %.3g req/s → saturated %s", step, rate, outcome.summary.get("saturated"))
        saturated += outcome.summary.get("saturated") is True
        if saturated >= sweep.stop_after_saturated:
            break
    _mark_knee(result)


def _mark_knee(result: SaturationResult) -> None:
    table = result.table
    if table.empty:
        return
    over = np.array([value is True for value in table["saturated"]], dtype=np.bool_)
    if over.all():
        result.notes.append("every step was over-saturated: lower low_fraction")
        return
    candidates = np.where(over, np.nan, pd.to_numeric(table["achieved_rate"], errors="coerce").to_numpy(np.float64))
    if np.isnan(candidates).all():
        result.notes.append("no step that kept up has an achieved rate")
        return
    result.knee_index = int(np.nanargmax(candidates))
    table.loc[table.index[result.knee_index], "knee"] = True
    if not over.any():
        result.notes.append("no step over-saturated: the knee is a lower bound; raise high_fraction")


def sweep_settings(result: SaturationResult) -> list[tuple[str, str]]:
    """The sweep's settings for its title blocks: the server's (:func:`..analysis.report.run_settings`)
    with the swept rates instead of one request rate."""
    from ..analysis.report import run_settings

    pairs = [(label, value) for label, value in run_settings(result.context) if label != "Request Rate"]
    rates = pd.to_numeric(result.table["target_rate"], errors="coerce").dropna()
    if len(rates):
        pairs.append(("Rates", f"{len(rates)} steps, {rates.min():.3g}–{rates.max():.3g} req/s"))
    return pairs


def _write(result: SaturationResult, sweep: SaturationSweepConfig, dump: dict[str, Any]) -> None:
    from ..analysis.html_pages import REPORT_FILE, saturation_report_html, write_report
    from ..analysis.saturation_plots import plot_saturation

    out = sweep.output_dir
    settings = sweep_settings(result)
    result.files["csv"] = write_text_atomic(out / "saturation.csv", result.table.to_csv(index=False))
    result.files["text"] = write_text_atomic(out / "saturation.txt", result.to_text() + "\n")
    result.files["json"] = write_json_atomic(out / "saturation.json", result.to_dict())
    pngs: list[Path] = []
    if not result.table.empty:
        line = "   ".join(f"{label}: {value}" for label, value in settings)
        pngs = [plot_saturation(result.table, result.capacity_rate, out / "plots" / "saturation_curve.png", line)]
        result.files["plot"] = pngs[0]
    page = saturation_report_html(result.table, result.headline(), result.notes, settings, pngs, dump)
    result.files["report"] = write_report(out / REPORT_FILE, page)


async def run_saturation_sweep_async(config: NodeConfig, sweep: SaturationSweepConfig) -> SaturationResult:
    """Coroutine form of :func:`run_saturation_sweep`."""
    probe_config(config, sweep, 1.0, sweep.output_dir / "probes" / "check")  # a bad base fails before anything runs
    result = SaturationResult(0.0, pd.DataFrame(columns=list(STEP_COLUMNS)), None)
    dump = {"sweep": sweep.model_dump(mode="json"), "base": config.model_dump(mode="json")}
    async with probe_series(config, sweep, "saturation", dump) as series:
        result.context = dict(series.context)
        status: RunStatus = "failed"
        error: str | None = None
        try:
            await _sweep(series, sweep, result)
            status = "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _write(result, sweep, dump)
            series.directory.finish(status, probes=len(series.probes), **({"error": error} if error else {}))
    return result


def run_saturation_sweep(config: NodeConfig, sweep: SaturationSweepConfig) -> SaturationResult:
    """Run the saturation sweep (module docstring) on one server started from ``config``.

    Raises:
        ConfigError: The base config cannot be probed (e.g. a dataset that defines its own count).
        RunInterrupted: SIGINT/SIGTERM; the steps measured so far are written.
    """
    return run_with_signals(run_saturation_sweep_async(config, sweep), escalate=kill_all_processes)
