"""Console reports: the "Node Test Results" block and a generic aligned plain-text table."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_node_report", "format_table"]

WIDTH = 59
MAX_ERROR_LINES = 3


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(value: Any, unit: str = "", digits: int = 2) -> str:
    return "n/a" if _missing(value) else f"{value:,.{digits}f}{unit}"


def _ms(value: Any) -> str:
    return _num(value, " ms", 1)


def _count(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value:,.0f}"


def _pct(value: Any) -> str:
    return "n/a" if _missing(value) else f"{100 * value:.1f}%"


def _rate(value: Any) -> str:
    if value is None or value == math.inf:
        return "inf (all at once)"
    return f"{value:g} req/s"


def _percentiles(s: Mapping[str, Any], label: str, metric: str) -> str:
    values = " / ".join(_num(s.get(f"{stat}_{metric}"), digits=1) for stat in ("mean", "median", "p95", "p99"))
    return f"- {label} (mean / P50 / P95 / P99): {values} ms"


def _header(c: Mapping[str, Any]) -> list[str]:
    backend = str(c.get("backend"))
    if c.get("sim_profile"):
        backend += f" ({c['sim_profile']})"
    line = f"Backend: {backend}   Max Running Requests: {c.get('max_running_requests')}"
    line += f"   Request Rate: {_rate(c.get('request_rate'))}"
    if c.get("max_concurrency"):
        line += f"   Max Concurrency: {c['max_concurrency']}"
    return [" Node Test Results ".center(WIDTH, "="), f"Model: {c.get('model')}", line]


def _throughput(s: Mapping[str, Any]) -> list[str]:
    return [
        "Throughput Metrics:",
        f"- Request Throughput: {_num(s.get('request_throughput'), ' req/s')}",
        f"- Input Token Throughput: {_num(s.get('input_throughput'), ' tok/s', 0)}",
        f"- Output Token Throughput: {_num(s.get('output_throughput'), ' tok/s', 0)}",
        f"- Peak Output Throughput: {_num(s.get('peak_output_throughput'), ' tok/s', 0)}",
        f"- Concurrency (mean in flight): {_num(s.get('concurrency'))}",
        f"- Max In Flight: {_count(s.get('max_in_flight'))}",
    ]


def _latency(s: Mapping[str, Any]) -> list[str]:
    return [
        "Latency Metrics:",
        f"- Mean Server Latency: {_ms(s.get('mean_server_latency'))}",
        f"- Mean Total Latency: {_ms(s.get('mean_total_latency'))}",
        f"- P50 Server Latency: {_ms(s.get('median_server_latency'))}",
        f"- P95 Server Latency: {_ms(s.get('p95_server_latency'))}",
        f"- P99 Server Latency: {_ms(s.get('p99_server_latency'))}",
        _percentiles(s, "TTFT", "ttft"),
        _percentiles(s, "ITL", "itl"),
        _percentiles(s, "TPOT", "tpot"),
    ]


def _queue(s: Mapping[str, Any]) -> list[str]:
    lines = [
        "Queue Metrics:",
        f"- Mean Queue Time: {_ms(s.get('mean_queue_time'))}",
        f"- P99 Queue Time: {_ms(s.get('p99_queue_time'))}",
        f"- Max Queue Depth: {_count(s.get('max_queue_depth'))} (client, waiting for a concurrency slot)",
    ]
    if not _missing(s.get("max_server_queue_depth")):
        lines.append(f"- Max Server Queue Depth: {_count(s['max_server_queue_depth'])} (sampled sglang:num_queue_reqs)")
    lines.append(f"- Cache Hit Rate: {_pct(s.get('cache_hit_rate'))}")
    return lines


def _requests(s: Mapping[str, Any]) -> list[str]:
    lines = [
        "Requests:",
        f"- Completed: {_count(s.get('completed'))}   Failed: {_count(s.get('failed'))}"
        f"   Success Rate: {_pct(s.get('success_rate'))}   Duration: {_num(s.get('duration_s'), ' s')}",
    ]
    errors: Mapping[str, int] = s.get("errors_by_type") or {}
    if errors:
        lines.append("- Errors: " + ", ".join(f"{kind}: {n}" for kind, n in errors.items()))
        lines += [f"  {message}" for message in (s.get("first_errors") or [])[:MAX_ERROR_LINES]]
    return lines


def format_node_report(summary: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The report printed after a node test.

    Args:
        summary: ``MetricsCollector.get_metrics()`` (optionally with ``max_server_queue_depth``).
        context: Run settings: ``model``, ``backend``, ``sim_profile``, ``max_running_requests``,
            ``request_rate`` (None or inf = all at once), ``max_concurrency``.

    Returns:
        The multi-line block (no trailing newline); missing values print as ``n/a``.
    """
    sections = (_throughput(summary), _latency(summary), _queue(summary), _requests(summary))
    lines = _header(context)
    for section in sections:
        lines += section
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value):,}"
    if _is_number(value):
        return "n/a" if math.isnan(float(value)) else f"{float(value):,.{digits}f}"
    return "n/a" if value is None else str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 2) -> str:
    """``rows`` as a plain-text table with aligned columns.

    Args:
        rows: One mapping per row; a missing key prints as ``n/a``.
        columns: Column order (default: the first row's keys).
        digits: Decimals for floats (thousands separated).

    Returns:
        Header, a dashed rule and one line per row; numbers right-aligned, text left-aligned.
    """
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())
    body = [[_cell(r.get(c), digits) for c in cols] for r in rows]
    numeric = [all(_is_number(r.get(c)) or r.get(c) is None for r in rows) for c in cols]
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(cols)]

    def fmt(cells: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([fmt(cols), "  ".join("-" * w for w in widths), *(fmt(line) for line in body)])
