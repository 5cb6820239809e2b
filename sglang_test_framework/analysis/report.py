"""Console reports: the Node Test Results block and plain aligned tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_node_report", "format_table"]

WIDTH = 60


def _ms(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.1f} ms"


def _num(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _count(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else _num(100 * value, "%", 1)


def format_node_report(summary: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The report printed after a NodeTest."""
    s, c = summary, context
    rate = c.get("request_rate")
    rate_txt = "inf (all at once)" if rate is None or rate == math.inf else f"{rate:g} req/s"
    lines = [
        " Node Test Results ".center(WIDTH, "="),
        f"Model: {c.get('model')}",
        f"Backend: {c.get('backend')}"
        + (f" ({c['sim_profile']})" if c.get("sim_profile") else "")
        + f"   Max Running Requests: {c.get('max_running_requests')}   Request Rate: {rate_txt}",
        f"Requests: {s.get('completed')} completed, {s.get('failed')} failed "
        f"(success rate {_num(100 * (s.get('success_rate') or 0), '%', 1)}) in {_num(s.get('duration_s'), ' s')}",
        "",
        "Throughput Metrics:",
        f"- Request Throughput: {_num(s.get('request_throughput'), ' req/s')}",
        f"- Input Token Throughput: {_num(s.get('input_throughput'), ' tok/s', 0)}",
        f"- Output Token Throughput: {_num(s.get('output_throughput'), ' tok/s', 0)}",
        f"- Peak Output Throughput: {_num(s.get('peak_output_throughput'), ' tok/s', 0)}",
        f"- Concurrency (avg in flight): {_num(s.get('concurrency'))}   Max In Flight: {s.get('max_in_flight')}",
        "",
        "Latency Metrics:",
        f"- Mean Server Latency: {_ms(s.get('mean_server_latency'))}",
        f"- Mean Total Latency: {_ms(s.get('mean_total_latency'))}",
        f"- P50 / P95 / P99 Server Latency: {_ms(s.get('median_server_latency'))} / "
        f"{_ms(s.get('p95_server_latency'))} / {_ms(s.get('p99_server_latency'))}",
        f"- TTFT mean / P50 / P95 / P99: {_ms(s.get('mean_ttft'))} / {_ms(s.get('median_ttft'))} / "
        f"{_ms(s.get('p95_ttft'))} / {_ms(s.get('p99_ttft'))}",
        f"- ITL mean / P50 / P95 / P99: {_ms(s.get('mean_itl'))} / {_ms(s.get('median_itl'))} / "
        f"{_ms(s.get('p95_itl'))} / {_ms(s.get('p99_itl'))}",
        f"- TPOT mean / P50 / P99: {_ms(s.get('mean_tpot'))} / {_ms(s.get('median_tpot'))} / {_ms(s.get('p99_tpot'))}",
        "",
        "Queue Metrics:",
        f"- Mean Queue Time: {_ms(s.get('mean_queue_time'))}   P99: {_ms(s.get('p99_queue_time'))}",
        f"- Max Queue Depth: server {_count(s.get('max_server_queue_depth'))} (sampled sglang:num_queue_reqs), "
        f"client {s.get('max_queue_depth')} (waiting for a max_concurrency slot)",
        f"- Cache Hit Rate: {_pct(s.get('cache_hit_rate'))}",
    ]
    errors = s.get("errors_by_type") or {}
    if errors:
        lines += ["", "Errors: " + ", ".join(f"{k}: {v}" for k, v in errors.items())]
        lines += [f"- {e}" for e in (s.get("first_errors") or [])[:3]]
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned plain-text table (numbers right-aligned, 2 decimals)."""
    if not rows:
        return "(no rows)"
    cols = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:,.2f}"
        return "n/a" if v is None else str(v)

    body = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(out)
