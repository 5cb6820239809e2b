"""The report's "Trace Replay" section: the trace's own statistics beside the measured ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .report import ReportLine, ReportSection

__all__ = ["trace_section"]


def _num(value: Any, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _lengths(stats: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {_num(stats.get(key), digits=0)}" for key in ("mean", "p50", "p99"))


def trace_section(block: Mapping[str, Any]) -> ReportSection:
    """The section of a summary's ``trace`` block (scenarios/trace_summary.py)."""
    own: Mapping[str, Any] = block.get("trace", {})
    got: Mapping[str, Any] = block.get("measured", {})
    pacing: Mapping[str, Any] = block.get("pacing_error_ms", {})
    closed = block.get("sessions") == "closed"
    return ReportSection(
        "Trace Replay (trace vs measured)",
        (
            ReportLine(
                (
                    ("Trace", f"{block.get('file')} ({block.get('format')}, {own.get('rows')} rows)"),
                    ("Speedup", f"{block.get('speedup'):g}×"),
                    *([("Sessions", "closed loop")] if closed else []),
                )
            ),
            ReportLine(
                (
                    ("Offered Rate", _num(own.get("mean_rate"), " req/s")),
                    ("Peak 1 s / 10 s", f"{_num(own.get('peak_rate_1s'))} / {_num(own.get('peak_rate_10s'))} req/s"),
                    ("Achieved Rate", _num(got.get("request_throughput"), " req/s")),
                )
            ),
            ReportLine(
                (
                    ("Input (trace)", _lengths(own.get("input_length", {}))),
                    ("sent", _lengths(got.get("input_length", {}))),
                )
            ),
            ReportLine(
                (
                    ("Output (trace)", _lengths(own.get("output_length", {}))),
                    ("measured", _lengths(got.get("output_length", {}))),
                )
            ),
            ReportLine(
                (
                    ("Ideal Hit Rate (unlimited cache)", _pct(own.get("hit_rate_infinite"))),
                    *(
                        [(f"at {own['max_total_tokens']:,} tokens", _pct(own.get("hit_rate_at_max_total_tokens")))]
                        if own.get("max_total_tokens")
                        else []
                    ),
                    ("Measured Hit Rate", _pct(got.get("cache_hit_rate"))),
                )
            ),
            ReportLine(
                (
                    (
                        "Pacing Error (send − scheduled)" if closed else "Pacing Error (send − trace time)",
                        f"p50 {_num(pacing.get('p50'), ' ms')}, p99 {_num(pacing.get('p99'), ' ms')}, "
                        f"max {_num(pacing.get('max'), ' ms')}",
                    ),
                )
            ),
        ),
    )
