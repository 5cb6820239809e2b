"""Reports: the "Node Test Results" block, the run-settings line every figure and page carries, and a
generic aligned plain-text table.

The report is built once as structured sections (:func:`node_report_sections`): the console text
(:func:`format_node_report`) and the HTML page (:mod:`.html_report`) both render those, so they show the
same numbers formatted the same way.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .run_warnings import SEVERE_KINDS, run_warnings

__all__ = [
    "ReportLine",
    "ReportSection",
    "common_settings",
    "common_settings_line",
    "format_cell",
    "format_node_report",
    "format_table",
    "node_report_sections",
    "run_settings",
    "settings_line",
]

WIDTH = 59
MAX_ERROR_LINES = 3


@dataclass(frozen=True)
class ReportLine:
    """One console line of the report: ``(label, value)`` pairs printed side by side, and indented
    notes printed under it (error messages)."""

    items: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()

    def text(self) -> list[str]:
        """The line as printed (``- label: value   label: value``) and its notes."""
        return ["- " + "   ".join(f"{k}: {v}" for k, v in self.items), *(f"  {note}" for note in self.notes)]


@dataclass(frozen=True)
class ReportSection:
    """A titled block of the report."""

    title: str
    lines: tuple[ReportLine, ...]
    alert: bool = False
    """Shown in red (a client-bound self-check)."""


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


def _load_rate(context: Mapping[str, Any]) -> str:
    """The offered load: a closed loop of virtual users, a stage schedule, or the request rate."""
    if context.get("virtual_users"):
        stages = f", stages {context['stages']}" if context.get("stages") else ""
        return f"closed loop, {context['virtual_users']} virtual users{stages}"
    if context.get("stages"):
        return f"stages {context['stages']} (req/s)"
    return _rate(context.get("request_rate"))


def _line(label: str, value: str) -> ReportLine:
    return ReportLine(((label, value),))


def run_settings(context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's settings as ``(label, value)`` pairs, in report order: model, backend (with the sim
    profile), max running requests, request rate, then what the context has of max concurrency, routing
    policy, workers, prompts, dataset and load duration."""
    backend = str(context.get("backend"))
    if context.get("sim_profile"):
        backend += f" ({context['sim_profile']})"
    pairs = [
        ("Model", str(context.get("model"))),
        ("Backend", backend),
        ("Max Running Requests", str(context.get("max_running_requests"))),
        ("Request Rate", _load_rate(context)),
    ]
    optional = (
        ("max_concurrency", "Max Concurrency"),
        ("routing_policy", "Routing Policy"),
        ("num_workers", "Workers"),
        ("num_prompts", "Prompts"),
        ("dataset_name", "Dataset"),
    )
    pairs += [(label, str(context[key])) for key, label in optional if context.get(key)]
    if context.get("duration_s"):
        pairs.append(("Load Duration", f"{context['duration_s']:g} s"))
    return pairs


def settings_line(context: Mapping[str, Any]) -> str:
    """:func:`run_settings` on one line (the second line of every figure title)."""
    return "   ".join(f"{label}: {value}" for label, value in run_settings(context))


def common_settings(contexts: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The :func:`run_settings` several runs share, then ``("Varies", "<labels>")`` naming those that
    differ. A setting no run knows is left out; for one run this is :func:`run_settings`."""
    per_run = [dict(run_settings(c)) for c in contexts]
    labels = list(dict.fromkeys(label for run in per_run for label in run))
    shared, varies = [], []
    for label in labels:
        values = {run.get(label, "None") for run in per_run}
        if values == {"None"}:
            continue
        if len(values) == 1:
            shared.append((label, values.pop()))
        else:
            varies.append(label)
    return shared + ([("Varies", ", ".join(varies))] if varies else [])


def common_settings_line(contexts: Sequence[Mapping[str, Any]]) -> str:
    """:func:`common_settings` on one line (the title block of figures comparing runs)."""
    return "   ".join(f"{label}: {value}" for label, value in common_settings(contexts))


def _header(c: Mapping[str, Any]) -> list[str]:
    settings = dict(run_settings(c))
    line = f"Backend: {settings['Backend']}   Max Running Requests: {settings['Max Running Requests']}"
    line += f"   Request Rate: {settings['Request Rate']}"
    if c.get("max_concurrency"):
        line += f"   Max Concurrency: {c['max_concurrency']}"
    return [" Node Test Results ".center(WIDTH, "="), f"Model: {c.get('model')}", line]


def _percentiles(s: Mapping[str, Any], label: str, metric: str) -> ReportLine:
    stats = [s.get(f"{stat}_{metric}") for stat in ("mean", "median", "p95", "p99")]
    if all(_missing(v) for v in stats):  # undefined for this run (e.g. TPOT and ITL without streaming)
        return _line(f"{label} (mean / P50 / P95 / P99)", "n/a")
    return _line(f"{label} (mean / P50 / P95 / P99)", " / ".join(_num(v, digits=1) for v in stats) + " ms")


def _throughput(s: Mapping[str, Any]) -> ReportSection:
    return ReportSection(
        "Throughput Metrics",
        (
            _line("Request Throughput", _num(s.get("request_throughput"), " req/s")),
            _line("Input Token Throughput", _num(s.get("input_throughput"), " tok/s", 0)),
            _line("Output Token Throughput", _num(s.get("output_throughput"), " tok/s", 0)),
            _line("Peak Output Throughput", _num(s.get("peak_output_throughput"), " tok/s", 0)),
            _line("Concurrency (mean in flight)", _num(s.get("concurrency"))),
            _line("Max In Flight", _count(s.get("max_in_flight"))),
        ),
    )


def _coalesced(s: Mapping[str, Any]) -> ReportLine:
    share = s.get("coalesced_chunk_share")
    if _missing(share):
        return _line("Coalesced Chunks", "n/a (no request streamed more than one chunk)")
    note = "of chunks shared a socket read with another; the ITL gaps between them are 0 and kept, as bench_serving"
    return _line("Coalesced Chunks", f"{_pct(share)} {note}")


def _latency(s: Mapping[str, Any]) -> ReportSection:
    return ReportSection(
        "Latency Metrics",
        (
            _line("Mean Server Latency", _ms(s.get("mean_server_latency"))),
            _line("Mean Total Latency", _ms(s.get("mean_total_latency"))),
            _line("P50 Server Latency", _ms(s.get("median_server_latency"))),
            _line("P95 Server Latency", _ms(s.get("p95_server_latency"))),
            _line("P99 Server Latency", _ms(s.get("p99_server_latency"))),
            _percentiles(s, "TTFT", "ttft"),
            _percentiles(s, "ITL", "itl"),
            _percentiles(s, "TPOT", "tpot"),
            _coalesced(s),
        ),
    )


def _queue_depth_note(context: Mapping[str, Any]) -> str:
    if context.get("max_concurrency"):
        return f"(client, waiting for one of {context['max_concurrency']} max_concurrency slots)"
    if "max_concurrency" in context:
        return "(client; max_concurrency is not set: requests that waited ≥ 1 ms between arrival and send)"
    return "(client: requests that waited ≥ 1 ms between arrival and send)"


def _queue(s: Mapping[str, Any], context: Mapping[str, Any]) -> ReportSection:
    lines = [
        _line("Mean Queue Time", _ms(s.get("mean_queue_time"))),
        _line("P99 Queue Time", _ms(s.get("p99_queue_time"))),
        _line("Max Queue Depth", f"{_count(s.get('max_queue_depth'))} {_queue_depth_note(context)}"),
    ]
    if not _missing(s.get("max_server_queue_depth")):
        depth = _count(s["max_server_queue_depth"])
        lines.append(_line("Max Server Queue Depth", f"{depth} (sampled sglang:num_queue_reqs)"))
    lines.append(_line("Cache Hit Rate", _pct(s.get("cache_hit_rate"))))
    return ReportSection("Queue Metrics", tuple(lines))


def _requests(s: Mapping[str, Any]) -> ReportSection:
    counts = ReportLine(
        (
            ("Completed", _count(s.get("completed"))),
            ("Failed", _count(s.get("failed"))),
            ("Success Rate", _pct(s.get("success_rate"))),
            ("Duration", _num(s.get("duration_s"), " s")),
        )
    )
    lines = [counts]
    if s.get("not_sent"):
        lines.append(ReportLine((("Not sent (user left)", _count(s.get("not_sent"))),)))
    errors: Mapping[str, int] = s.get("errors_by_type") or {}
    if errors:
        messages = tuple(str(m) for m in (s.get("first_errors") or [])[:MAX_ERROR_LINES])
        lines.append(ReportLine((("Errors", ", ".join(f"{kind}: {n}" for kind, n in errors.items())),), messages))
    return ReportSection("Requests", tuple(lines))


def _window(s: Mapping[str, Any]) -> ReportSection:
    w: Mapping[str, Any] = s["measure_window"]
    span = f"{_num(w.get('start_s'), digits=1)}–{_num(w.get('end_s'), digits=1)} s"
    load = f"of a {_num(w.get('load_end_s'), ' s', 1)} load phase"
    if w.get("ramp_up_s"):
        load += f" after a {_num(w['ramp_up_s'], ' s', 1)} ramp-up"
    inside = f"{_count(w.get('requests'))} requests inside, {_count(w.get('excluded_requests'))} left out"
    verdict = {True: "YES", False: "no", None: "not judged"}.get(s.get("saturated"), "n/a")
    return ReportSection(
        "Measurement Window",
        (
            _line("Window", f"{w.get('mode')}: {span} {load} ({inside})"),
            ReportLine(
                (
                    ("Offered Rate", _num(s.get("offered_rate"), " req/s")),
                    ("Achieved Rate", _num(s.get("achieved_rate"), " req/s")),
                )
            ),
            _line("Over-saturated", f"{verdict} — {s.get('saturation_reason') or 'n/a'}"),
        ),
    )


def _client_check(s: Mapping[str, Any]) -> ReportSection:
    """The client self-check (metrics/client_check.py): arrival lag, send rates, CPU, the verdict."""
    c: Mapping[str, Any] = s["client_check"]
    bound = c.get("lag_bound_ms")
    lag = f"p50 {_num(c.get('arrival_lag_p50_ms'), ' ms', 3)}, p99 {_num(c.get('arrival_lag_p99_ms'), ' ms', 3)}, "
    lag += f"max {_num(c.get('arrival_lag_max_ms'), ' ms', 3)}"
    lag += f" (bound {_num(bound, ' ms', 2)})" if bound is not None else " (burst: not judged)"
    cpu = ", ".join(
        f"process {p.get('index')}: {_pct(p.get('cpu_utilisation'))} of a core ({_count(p.get('requests'))} requests)"
        for p in c.get("processes") or []
    )
    verdict = f"YES — {c.get('client_bound_reason')}" if c.get("client_bound") else "no"
    return ReportSection(
        "Client Self-check",
        (
            _line("Arrival Lag", lag),
            ReportLine(
                (
                    ("Offered Send Rate", _num(c.get("offered_send_rate"), " req/s")),
                    ("Achieved Send Rate", _num(c.get("achieved_send_rate"), " req/s")),
                )
            ),
            _line("Client CPU", cpu or "n/a (not measured)"),
            _line("Client-bound", verdict),
        ),
        alert=bool(c.get("client_bound")),
    )


def node_report_sections(summary: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> list[ReportSection]:
    """The report's sections (throughput, latency, queue, requests) for ``summary``
    (``MetricsCollector.get_metrics()``, optionally with ``max_server_queue_depth``); missing values
    read ``n/a``. ``context`` (the run's settings) words the labels that depend on the config: the
    client queue depth says whether ``max_concurrency`` was set. A summary with a ``measure_window``
    starts with the window, the offered and achieved rates and the saturation verdict; one with a
    ``client_check`` ends with the client self-check."""
    context = context or {}
    window = [_window(summary)] if isinstance(summary.get("measure_window"), Mapping) else []
    check = [_client_check(summary)] if isinstance(summary.get("client_check"), Mapping) else []
    trace = [_trace(summary["trace"])] if isinstance(summary.get("trace"), Mapping) else []
    return [
        *window,
        *trace,
        _throughput(summary),
        _latency(summary),
        _queue(summary, context),
        _requests(summary),
        *check,
    ]


def _trace(block: Mapping[str, Any]) -> ReportSection:
    from .trace_report import trace_section  # it builds on this module's ReportSection

    return trace_section(block)


def _red(text: str, color: bool) -> str:
    return f"\033[31m{text}\033[0m" if color else text


def use_color() -> bool:
    """Colour the console report: stdout is a terminal and ``NO_COLOR`` is not set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def format_node_report(summary: Mapping[str, Any], context: Mapping[str, Any], color: bool | None = None) -> str:
    """The report printed after a node test.

    Args:
        summary: ``MetricsCollector.get_metrics()`` (optionally with ``max_server_queue_depth``).
        context: Run settings: ``model``, ``backend``, ``sim_profile``, ``max_running_requests``,
            ``request_rate`` (None or inf = all at once), ``max_concurrency``.
        color: Severe warnings (:data:`.run_warnings.SEVERE_KINDS`: a client-bound run…) in red
            (ANSI); None: when :func:`use_color`.

    Returns:
        The multi-line block (no trailing newline); missing values print as ``n/a``. The run's warnings
        (:func:`.run_warnings.run_warnings`: incomplete run, server exits, failures, over-saturation) come
        last, as on ``report.html``.
    """
    lines = _header(context)
    for section in node_report_sections(summary, context):
        lines.append(f"{section.title}:")
        for line in section.lines:
            lines += line.text()
    warnings = run_warnings(summary, context)
    if warnings:
        lines.append("Warnings:")
        red = use_color() if color is None else color
        lines += [_red(f"- {w.message}", red and w.kind in SEVERE_KINDS) for w in warnings]
    lines.append("=" * WIDTH)
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_cell(value: Any, digits: int = 2) -> str:
    """A table cell: integers with thousands separators, floats with ``digits`` decimals, missing
    values (None, NaN) as ``n/a``, anything else as its text."""
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
    body = [[format_cell(r.get(c), digits) for c in cols] for r in rows]
    numeric = [all(_is_number(r.get(c)) or r.get(c) is None for r in rows) for c in cols]
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(cols)]

    def fmt(cells: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([fmt(cols), "  ".join("-" * w for w in widths), *(fmt(line) for line in body)])
