"""Metrics per component of a mixed workload (``RequestRecord.workload``), each computed by the run's
own metric definitions over that component's records (docs/workloads.md, "Mixed workloads")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..metrics.collector import MetricsCollector
from ..records import RequestRecord

__all__ = ["WORKLOAD_KEYS", "format_workload_table", "per_workload_summary", "workload_rows"]

WORKLOAD_KEYS: tuple[str, ...] = (
    "total_requests",
    "completed",
    "failed",
    "success_rate",
    "total_input_tokens",
    "median_ttft",
    "p99_ttft",
    "median_tpot",
    "median_server_latency",
    "p99_server_latency",
    "cache_hit_rate",
)
"""The summary keys kept per workload (definitions and units: docs/metrics.md)."""


def per_workload_summary(records: Iterable[RequestRecord]) -> dict[str, dict[str, Any]]:
    """``{workload name: {key: value}}`` for :data:`WORKLOAD_KEYS` over every record of each workload
    (the whole run, warmup excluded as in ``requests.jsonl``), names in first-seen order; empty when no
    record names a workload."""
    groups: dict[str, MetricsCollector] = {}
    for record in records:
        if record.workload is None:
            continue
        groups.setdefault(record.workload, MetricsCollector()).add_record(record)
    out: dict[str, dict[str, Any]] = {}
    for name, collector in groups.items():
        metrics = collector.get_metrics()
        out[name] = {key: metrics.get(key) for key in WORKLOAD_KEYS}
    return out


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_workload_table(per_workload: dict[str, dict[str, Any]]) -> str:
    """The per-workload block of the console report (times in ms, rates in %)."""
    header = ("workload", "requests", "failed", "success %", "TTFT p50", "TTFT p99", "TPOT p50", "E2E p50", "cache %")
    rows = [header]
    for name, m in per_workload.items():
        rate = m.get("success_rate")
        hit = m.get("cache_hit_rate")
        rows.append(
            (
                name,
                _cell(m.get("total_requests")),
                _cell(m.get("failed")),
                _cell(rate * 100 if rate is not None else None),
                _cell(m.get("median_ttft")),
                _cell(m.get("p99_ttft")),
                _cell(m.get("median_tpot"), 2),
                _cell(m.get("median_server_latency")),
                _cell(hit * 100 if hit is not None else None),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["Per workload (ms):"]
    for row in rows:
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
            )
        )
    return "\n".join(lines)


def workload_rows(per_workload: dict[str, dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of the per-workload table of ``report.html`` (keys as in ``summary.json``)."""
    columns = ["workload", *WORKLOAD_KEYS]
    return columns, [{"workload": name, **metrics} for name, metrics in per_workload.items()]
