"""The summary a scenario reports: the run's summary over its measurement window, with the offered and
achieved rates and the over-saturation verdict (docs/metrics.md, "Measurement window" and
"Saturation")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config.closed_loop import has_sessions
from ..config.workload import WorkloadConfig
from ..metrics.client_check import check_client
from ..metrics.collector import MetricsCollector
from ..metrics.columns import Floats, Ints
from ..metrics.saturation import judge_saturation
from ..metrics.summary import bench_serving_view
from ..metrics.window import MeasureWindow, resolve_window, window_goodput, window_summary
from .runner import ScenarioRun
from .trace_summary import trace_block

__all__ = ["SERVER_QUEUE_METRIC", "bench_line", "measure_window", "measured_goodput", "measured_summary"]

SERVER_QUEUE_METRIC = "sglang:num_queue_reqs"


def server_queue_series(collector: MetricsCollector) -> dict[str, tuple[Ints, Floats]]:
    """Per scraped server, its ``sglang:num_queue_reqs`` samples (summed over label sets, e.g. DP
    ranks) as (times in ns on the records' clock, values)."""
    ts = collector.timeseries_dataframe()
    if ts.empty:
        return {}
    rows = ts[ts["metric"] == SERVER_QUEUE_METRIC]
    origin = collector.run_start_ns
    out: dict[str, tuple[Ints, Floats]] = {}
    for target, group in rows.groupby("target"):
        per_t = group.groupby("t_s")["value"].sum()
        t_ns = np.round(per_t.index.to_numpy(dtype=np.float64) * 1e9).astype(np.int64) + origin
        out[str(target)] = (t_ns, per_t.to_numpy(dtype=np.float64))
    return out


def measure_window(run: ScenarioRun, config: WorkloadConfig) -> MeasureWindow:
    """The run's window: ``config.measure_window`` over the load phases the runner recorded."""
    return resolve_window(config.measure_window, run.load_phases, run.collector.columns())


def measured_summary(run: ScenarioRun, config: WorkloadConfig) -> dict[str, Any]:
    """``MetricsCollector.get_metrics()`` with the window applied (:func:`..metrics.window.window_summary`)
    and the saturation verdict (``saturated``, ``saturation_reason``, ``backlog_slope``,
    ``server_queue_slope``; :func:`..metrics.saturation.judge_saturation`) and the client self-check
    (``client_check``, ``client_bound``, ``client_bound_reason``; :mod:`..metrics.client_check`)."""
    collector = run.collector
    columns = collector.columns()
    window = measure_window(run, config)
    summary = collector.get_metrics()
    summary.update(window_summary(columns, window))
    summary.update(judge_saturation(columns, window, server_queue_series(collector)).to_dict())
    # sends that wait on the server (a concurrency slot, the previous turn of a chain) make no send-rate verdict
    open_loop = config.max_concurrency is None and config.virtual_users is None and not has_sessions(config)
    check = check_client(columns, collector.client_processes, open_loop=open_loop, saturated=summary["saturated"])
    summary.update(check.to_dict())
    if config.dataset_name == "trace":
        summary["trace"] = trace_block(config, columns)
    return summary


def measured_goodput(run: ScenarioRun, config: WorkloadConfig, slos_ms: Mapping[str, float]) -> dict[str, Any]:
    """bench_serving's goodput block over the run's window (:func:`..metrics.window.window_goodput`)."""
    return window_goodput(run.collector.columns(), measure_window(run, config), slos_ms)


def bench_line(summary: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` under bench_serving's key names (the same numbers, window applied) plus the context."""
    return bench_serving_view(summary, context)
