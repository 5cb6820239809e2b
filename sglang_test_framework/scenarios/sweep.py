"""Parameter sweeps: one NodeTest per grid point, in the sweep's own directory; restartable (finished
points whose effective config is unchanged are skipped, anything else is run again)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.repeats import aggregate_repeats, mean_ci_display
from ..config.sweep_config import SweepConfig, safe_name
from ..errors import ConfigError, RunInterrupted
from ..fileio import write_json_atomic, write_text_atomic
from .arms import summary_value
from .node import NodeTest
from .run_dir import set_aside

__all__ = ["SweepResult", "config_differences", "run_sweep"]

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
    """The combined table (one row per point) and where things were written.

    With repeats, ``table`` has one row per grid point: ``repeats`` (runs that completed), the mean of
    each metric over them and ``<m>_ci95`` (95% CI half-width); ``runs`` has one row per run."""

    table: pd.DataFrame
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]
    files: dict[str, Path] = field(default_factory=dict)
    runs: pd.DataFrame | None = None

    def display_table(self) -> pd.DataFrame:
        """:attr:`table` for reading: ``mean ±CI`` cells for repeated points."""
        return mean_ci_display(self.table) if self.runs is not None else self.table

    def to_text(self) -> str:
        """Aligned plain-text table."""
        return str(self.display_table().to_string(float_format=lambda v: f"{v:,.2f}"))


def _row(point_name: str, overrides: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point": point_name}
    row.update({k.lstrip("-"): v for k, v in overrides.items()})
    row.update({col: summary_value(summary, col) for col in SWEEP_COLUMNS})
    return row


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field: old → new`` for every (nested) field whose value differs, sorted."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


_PRESENTATION_ONLY = ("output_dir", "progress")
"""Fields that do not change what a run measures (left out when deciding whether it may be reused)."""


def _measured(dump: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dump.items() if k not in _PRESENTATION_ONLY}


def _sweep_identity(config: SweepConfig) -> dict[str, Any]:
    """What makes two sweeps the same sweep: the effective base config, the grid and the repeats."""
    dump = _measured(config.model_dump(mode="json"))
    dump["base"] = _measured(dump["base"])
    return dump


def _claim_sweep_dir(config: SweepConfig, resume: bool) -> None:
    """Make ``output_dir`` this sweep's own: resume it when it holds the same sweep, set an earlier,
    different sweep aside (``--resume`` refuses instead and names the differences)."""
    out = config.output_dir
    identity = _sweep_identity(config)
    saved_path = out / "sweep.json"
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        diffs = config_differences(saved, identity)
        if not diffs:
            return
        if resume:
            raise ConfigError(
                f"--resume: the sweep in {out} was run with other settings ({'; '.join(diffs[:5])}); "
                "pass the same settings to resume it, or leave out --resume to start a new sweep"
            )
        moved = set_aside(out)
        logger.info("%s held a different sweep (%s): moved it to %s", out, "; ".join(diffs[:3]), moved)
    elif resume and out.exists() and any(out.iterdir()):
        raise ConfigError(f"--resume: {out} holds no sweep.json, so there is no sweep to resume")
    elif out.exists() and any(out.iterdir()):
        moved = set_aside(out)
        logger.info("%s held other files: moved them to %s", out, moved)
    write_json_atomic(saved_path, identity)


def _finished_summary(path: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a finished point whose recorded config equals ``expected``, else None."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("point_config") != expected:
        return None
    summary = data.get("summary")
    return summary if isinstance(summary, dict) else None


def run_sweep(config: SweepConfig, plots: bool = True, resume: bool = False) -> SweepResult:
    """Run every point not yet finished, then write ``sweep.csv``, ``sweep.txt``, plots and ``report.html``.

    Every point's config is built (and validated) before anything runs. A point is finished when
    ``points/<name>.json`` holds its summary *and* its exact effective config; a point whose config
    changed is run again. A failing point is recorded (``points/<name>.failed.json`` and a ``failed``
    row with its error) and retried on the next run; it never stops the sweep or removes other results.
    """
    planned = [(point, config.point_config(point)) for point in config.points()]
    _claim_sweep_dir(config, resume)
    points_dir = config.output_dir / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    ran: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    for point, point_config in planned:
        path = points_dir / f"{safe_name(point.name)}.json"
        failed_path = points_dir / f"{safe_name(point.name)}.failed.json"
        expected = _measured(point_config.model_dump(mode="json"))
        summary = _finished_summary(path, expected)
        if summary is not None:
            skipped.append(point.name)
        else:
            try:
                results = NodeTest(point_config).run()
            except RunInterrupted:
                raise
            except Exception as exc:
                error = " ".join(str(exc).split())[:500] or type(exc).__name__
                logger.error("sweep point %s failed: %s", point.name, error)
                failed[point.name] = error
                write_json_atomic(failed_path, {"point": point.name, "error": error, "point_config": expected})
                rows.append({**_row(point.name, point.overrides, {}), "status": "failed", "error": error})
                continue
            summary = {k: v for k, v in results.summary.items() if not isinstance(v, (list, dict))}
            write_json_atomic(path, {"point": point.name, "point_config": expected, "summary": summary})
            failed_path.unlink(missing_ok=True)
            ran.append(point.name)
        rows.append({**_row(point.name, point.overrides, summary), "status": "completed", "error": None})
    table = pd.DataFrame(rows)
    runs = None
    if config.repeats > 1:  # one row per point: mean ± 95% CI over its repeats; every run in sweep_runs.csv
        runs, table = table, aggregate_repeats(table, [k.lstrip("-") for k in config.grid], SWEEP_COLUMNS)
    result = SweepResult(table, ran, skipped, failed, runs=runs)
    if runs is not None:
        result.files["runs_csv"] = write_text_atomic(config.output_dir / "sweep_runs.csv", runs.to_csv(index=False))
    result.files["csv"] = write_text_atomic(config.output_dir / "sweep.csv", table.to_csv(index=False))
    result.files["text"] = write_text_atomic(config.output_dir / "sweep.txt", result.to_text() + "\n")
    _write_plots_and_report(config, result, {point.name: cfg.output_dir for point, cfg in planned}, plots)
    return result


def _write_plots_and_report(config: SweepConfig, result: SweepResult, run_dirs: dict[str, Path], plots: bool) -> None:
    """The sweep's plots (when ``plots``) and ``report.html``, titled with the settings the points share
    (read from each point's ``runs/<point>/summary.json``)."""
    from ..analysis.compare import load_result_file
    from ..analysis.html_pages import REPORT_FILE, sweep_report_html, write_report
    from ..analysis.report import common_settings_line
    from ..errors import FrameworkError

    summaries: dict[str, dict[str, Any]] = {}
    for name, run_dir in run_dirs.items():
        try:
            summaries[name] = load_result_file(run_dir / "summary.json")
        except FrameworkError:
            continue  # a point that never wrote its summary: the table and warnings say why
    settings = common_settings_line([s.get("context") or {} for s in summaries.values()])
    pngs: list[Path] = []
    if plots and not result.table.empty:
        from ..analysis.sweep_plots import plot_sweep

        pngs = plot_sweep(result.table, list(config.grid), config.output_dir / "plots", settings)
        for path in pngs:
            result.files[f"plot_{path.stem}"] = path
    page = sweep_report_html(result.display_table(), summaries, result.failed, pngs, config.model_dump(mode="json"))
    result.files["report"] = write_report(config.output_dir / REPORT_FILE, page)
