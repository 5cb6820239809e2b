"""Console tables of scenario metrics with units: every column header names its unit, counts print as
integers, ratios as percentages, missing values as ``n/a`` (never ``nan``), numbers right-aligned.

Used by ``sglang-test routing`` (per-worker table and summary lines), ``policy-study`` and
``pd-compare``; the CSV/JSON files keep the raw column names and values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .report import format_table

__all__ = [
    "column_label",
    "display_frame",
    "format_metric",
    "metric_rows_text",
    "routing_summary_lines",
    "side_by_side_text",
]

COUNT_COLUMNS = frozenset(
    {
        "workers",
        "completed",
        "failed",
        "requests",
        "prompt_tokens",
        "output_tokens",
        "cached_tokens",
        "server_requests_served",
        "attribution_mismatches",
        "total_requests",
    }
)
PERCENT_COLUMNS = frozenset({"cache_hit_rate", "success_rate"})
# Unit of a column, by exact name, else by suffix / stem (first match wins).
EXACT_UNITS: dict[str, str] = {
    "request_throughput": "req/s",
    "output_throughput": "tok/s",
    "input_throughput": "tok/s",
    "total_throughput": "tok/s",
    "load_imbalance": "max/mean",
    "load_imbalance_cv": "std/mean",
}
STEM_UNITS: tuple[tuple[str, str], ...] = (
    ("_ms", "ms"),
    ("_ttft", "ms"),
    ("_itl", "ms"),
    ("_tpot", "ms"),
    ("_latency", "ms"),
)
# (summary key, label, unit) of the routing run's console summary.
ROUTING_SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("request_throughput", "request throughput", " req/s"),
    ("output_throughput", "output throughput", " tok/s"),
    ("cache_hit_rate", "cache hit rate (Σ cached / Σ prompt tokens)", "%"),
    ("load_imbalance", "load imbalance (max / mean requests per worker; 1 = even)", ""),
    ("median_ttft", "TTFT p50", " ms"),
    ("p99_ttft", "TTFT p99", " ms"),
    ("p99_server_latency", "server latency p99", " ms"),
    ("failed", "failed requests", ""),
)


def _unit(column: str) -> str:
    if column in PERCENT_COLUMNS:
        return "%"
    if column in EXACT_UNITS:
        return EXACT_UNITS[column]
    return next((unit for stem, unit in STEM_UNITS if column.endswith(stem)), "")


def column_label(column: str) -> str:
    """``column`` with its unit: ``p99_ttft`` → ``p99_ttft (ms)``; ``cache_hit_rate`` → ``cache_hit_rate
    (%)``; names ending in ``_ms`` and counts unchanged."""
    unit = _unit(column)
    return f"{column} ({unit})" if unit and not column.endswith("_ms") else column


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(float(value)))


def format_metric(column: str, value: Any, digits: int = 2) -> str:
    """One value of ``column`` as text without the unit (the header has it): counts as integers,
    ratios as percentages with one decimal, other numbers with ``digits`` decimals, ``n/a`` if missing."""
    if _missing(value):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if column in COUNT_COLUMNS:
        return f"{round(float(value)):,}"
    if column in PERCENT_COLUMNS:
        return f"{100 * float(value):.1f}"
    return f"{float(value):,.{digits}f}"


def _cell(column: str, value: Any, digits: int) -> Any:
    """A value for :func:`.report.format_table`: numbers stay numbers (right-aligned) where the plain
    format is right; else the formatted text."""
    if _missing(value):
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if column in COUNT_COLUMNS:
            return round(float(value))
        if column in PERCENT_COLUMNS:
            return round(100 * float(value), 1)
        return round(float(value), digits)
    return value


def metric_rows_text(frame: pd.DataFrame, digits: int = 2) -> str:
    """``frame`` (one row per item; a named index or MultiIndex becomes the first columns) as an
    aligned table whose headers carry units."""
    data = frame.reset_index() if any(name is not None for name in frame.index.names) else frame
    columns = [str(c) for c in data.columns]
    labels = {c: column_label(c) for c in columns}
    rows = [
        {labels[c]: _cell(c, record.get(c), digits) for c in columns}
        for record in ({str(k): v for k, v in r.items()} for r in data.to_dict(orient="records"))
    ]
    return format_table(rows, [labels[c] for c in columns], digits=digits)


def side_by_side_text(table: pd.DataFrame, digits: int = 2) -> str:
    """``table`` (rows = arms, columns = metrics) transposed: one line per metric (with its unit), one
    column per arm; the header line is ``arm`` and the arms' names."""
    arms = [str(a) for a in table.index]
    lines = []
    for column in table.columns:
        row: dict[str, Any] = {"metric": column_label(str(column))}
        for arm, value in zip(arms, table[column].tolist(), strict=True):
            row[arm] = format_metric(str(column), value, digits)
        lines.append(row)
    width = max(len(str(r["metric"])) for r in lines) if lines else 6
    widths = {arm: max(len(arm), *(len(str(r[arm])) for r in lines)) for arm in arms}
    out = ["arm".ljust(width) + "".join("  " + arm.rjust(widths[arm]) for arm in arms)]
    out += [str(r["metric"]).ljust(width) + "".join("  " + str(r[a]).rjust(widths[a]) for a in arms) for r in lines]
    return "\n".join(out)


def routing_summary_lines(
    summary: Mapping[str, Any], keys: Sequence[tuple[str, str, str]] = ROUTING_SUMMARY
) -> list[str]:
    """``label: value unit`` lines of a routing run's summary (a key absent from it is looked up with
    an ``_ms`` suffix, as the exported summary names it, else skipped)."""
    lines = []
    for key, label, unit in keys:
        found = next((k for k in (key, key + "_ms") if k in summary), None)
        if found is not None:
            text = format_metric(key, summary[found])
            lines.append(f"{label}: {text}{'' if text == 'n/a' else unit}")
    return lines


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for an HTML table: ratios in percent, counts as integers (missing: None, shown as
    ``n/a``), headers with units (:func:`column_label`)."""
    out = frame.copy()
    for column in out.columns:
        name = str(column)
        if name in PERCENT_COLUMNS:
            out[column] = 100 * pd.to_numeric(out[column], errors="coerce")
        elif name in COUNT_COLUMNS:
            values = pd.to_numeric(out[column], errors="coerce")
            out[column] = pd.Series(
                [None if _missing(v) else round(float(v)) for v in values], index=out.index, dtype=object
            )
    return out.rename(columns=lambda c: column_label(str(c)))


def flat_settings(settings: Mapping[str, Any]) -> str:
    """Nested settings on lines of their own, one per top-level key: ``retries: max_attempts=5,
    initial_backoff_ms=50, …`` (keys sorted)."""
    lines = []
    for key in sorted(settings):
        value = settings[key]
        if isinstance(value, Mapping):
            lines.append(f"  {key}: " + ", ".join(f"{k}={value[k]}" for k in sorted(value)))
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)
