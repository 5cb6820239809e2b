"""Repeated runs combined: one summary with the mean and 95% confidence interval of each key metric
over the repeats (Student t), the table of the repeats, and its console text.

Pure functions of the repeats' summaries (``RunResults.summary`` or the ``summary.json`` lines).
"""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .compare import COMPARE_METRICS
from .report import format_table
from .stats import finite_values, mean_ci95

__all__ = [
    "MAX_COMBINED_ERRORS",
    "REPEAT_METRICS",
    "SUMMED_KEYS",
    "aggregate_repeats",
    "combine_summaries",
    "format_repeats_report",
    "mean_ci_display",
    "repeat_rows",
    "repeat_stats",
    "repeats_note",
    "repeats_table",
]

REPEAT_METRICS: tuple[str, ...] = (
    *(m.key for m in COMPARE_METRICS),
    "p99_tpot",
    "duration_s",
    "coalesced_chunk_share",
)
"""The key metrics whose mean and 95% CI over the repeats are reported (``repeat_stats``)."""
SUMMED_KEYS: frozenset[str] = frozenset(
    {
        "total_requests",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "total_input_text_tokens",
        "total_output_tokens_retokenized",
        "good_requests",
        "scrape_errors",
        "coalesced_chunks",
    }
)
"""Counts: the combined summary holds their total over the repeats (every other number: the mean)."""
MAX_COMBINED_ERRORS = 5
_RATE_METRICS = frozenset(m.key for m in COMPARE_METRICS if m.share) | {"coalesced_chunk_share"}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def repeat_stats(values: Sequence[Any]) -> dict[str, Any]:
    """``n`` (finite values), ``mean``, ``ci95`` (half-width; None for fewer than 2), ``std`` (sample),
    ``min``, ``max`` and the ``values`` themselves (None where a repeat has none)."""
    shown = [float(v) if _is_number(v) and math.isfinite(float(v)) else None for v in values]
    finite = finite_values(shown)
    mean, ci = mean_ci95(finite)
    n = len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else None
    return {
        "n": n,
        "mean": mean if n else None,
        "ci95": None if math.isnan(ci) else ci,
        "std": std,
        "min": min(finite) if n else None,
        "max": max(finite) if n else None,
        "values": shown,
    }


def _combine_value(key: str, values: list[Any]) -> tuple[bool, Any]:
    """``(keep, value)`` of one key: counts summed, numbers averaged, other values kept when equal."""
    present = [v for v in values if v is not None]
    if not present:
        return True, None
    if all(_is_number(v) for v in present):
        if key in SUMMED_KEYS:
            return True, sum(present)
        if len(present) == len(values) and all(v == present[0] for v in present):
            return True, present[0]  # the same in every repeat (a setting): kept as it is
        finite = finite_values(present)
        return True, sum(finite) / len(finite) if finite else None
    first = values[0]
    return all(v == first for v in values), first


def combine_summaries(summaries: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> dict[str, Any]:
    """One summary of repeated runs.

    Counts (:data:`SUMMED_KEYS`) are totals over the repeats, ``success_rate`` is completed / total
    requests over all of them, every other number is the mean over the repeats that have it; other
    values are kept when every repeat has the same (else left out); ``errors_by_type`` is summed and
    ``first_errors`` name their repeat. ``repeats`` is the number of runs and ``repeat_stats`` maps each
    key metric (:data:`REPEAT_METRICS`) present to :func:`repeat_stats` of its per-repeat values.

    Args:
        summaries: One flat summary per repeat, in repeat order.
        names: The repeats' names for ``first_errors`` (default ``rep-<k>``).
    """
    names = list(names) if names is not None else [f"rep-{k}" for k in range(len(summaries))]
    keys = list(dict.fromkeys(k for s in summaries for k in s))
    out: dict[str, Any] = {}
    for key in keys:
        if key in ("errors_by_type", "first_errors", "repeat_stats"):
            continue
        keep, value = _combine_value(key, [s.get(key) for s in summaries])
        if keep:
            out[key] = value
    total = out.get("total_requests")
    if _is_number(total) and total and _is_number(out.get("completed")):
        out["success_rate"] = out["completed"] / total
    errors: Counter[str] = Counter()
    for s in summaries:
        errors.update({str(k): int(v) for k, v in (s.get("errors_by_type") or {}).items()})
    out["errors_by_type"] = dict(errors.most_common())
    messages = [
        f"{name}: {message}"
        for name, s in zip(names, summaries, strict=True)
        for message in s.get("first_errors") or []
    ]
    out["first_errors"] = messages[:MAX_COMBINED_ERRORS]
    out["repeats"] = len(summaries)
    out["repeat_stats"] = {
        key: repeat_stats([s.get(key) for s in summaries])
        for key in REPEAT_METRICS
        if any(_is_number(s.get(key)) for s in summaries)
    }
    return out


def repeats_table(summaries: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per repeat (index ``repeat``): status, completed, failed and every key metric."""
    names = list(names) if names is not None else [f"rep-{k}" for k in range(len(summaries))]
    columns = ["status", "completed", "failed", *REPEAT_METRICS]
    rows = [{c: s.get(c) for c in columns} for s in summaries]
    return pd.DataFrame(rows, index=pd.Index(names, name="repeat"), columns=columns)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if key in _RATE_METRICS else f"{value:,.2f}"


def repeat_rows(combined: Mapping[str, Any]) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of the repeats table: one row per key metric with its mean, 95% CI, min,
    max and each repeat's value (missing values read ``n/a``; rates in %)."""
    stats: Mapping[str, Mapping[str, Any]] = combined.get("repeat_stats") or {}
    n = max((len(st.get("values") or []) for st in stats.values()), default=0)
    rows = []
    for key, st in stats.items():
        row = {
            "metric": key,
            "mean": _cell(key, st.get("mean")),
            "±95% CI": _cell(key, st.get("ci95")),
            "min": _cell(key, st.get("min")),
            "max": _cell(key, st.get("max")),
        }
        row.update({f"rep-{k}": _cell(key, v) for k, v in enumerate(st.get("values") or [])})
        rows.append(row)
    return ["metric", "mean", "±95% CI", "min", "max", *(f"rep-{k}" for k in range(n))], rows


def repeats_note(combined: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """How the repeats were run and what ± means, in one sentence."""
    seeds = "the same workload (same seed)" if context.get("repeat_seed", "same") == "same" else "seed + k in repeat k"
    return (
        f"{combined.get('repeats')} repeats, each a complete run with its own servers and {seeds}; "
        "± = half-width of the 95% confidence interval of the mean (Student t)."
    )


def format_repeats_report(combined: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The console block of a repeated run: :func:`repeats_note`, the request counts over all repeats
    and the table of :func:`repeat_rows`."""
    columns, rows = repeat_rows(combined)
    title = f" Repeated runs: {context.get('name')} ".center(59, "=")
    counts = (
        f"Requests (all repeats): {combined.get('completed')} of {combined.get('total_requests')} completed; "
        f"status: {combined.get('status', 'n/a')}"
    )
    return "\n".join([title, repeats_note(combined, context), counts, format_table(rows, columns)])


def _base_point(name: Any) -> str:
    return re.sub(r",rep=\d+$", "", str(name))


def aggregate_repeats(runs: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """The sweep table of repeated points: one row per point (``point`` without its ``,rep=k``), in
    first-seen order, with ``repeats`` (its runs that completed), the grid ``keys``, ``status``
    (``completed``; ``failed`` when no run completed; ``partial k/n`` otherwise), the first ``error``,
    and per metric the mean over the completed runs and ``<m>_ci95`` (95% CI half-width, NaN for one)."""
    if runs.empty:
        return runs
    names = runs["point"].map(_base_point)
    rows = []
    for name in dict.fromkeys(names):
        group = runs[names == name]
        ok = group[group["status"] == "completed"] if "status" in group else group
        status = "completed" if len(ok) == len(group) else ("failed" if ok.empty else f"partial {len(ok)}/{len(group)}")
        row: dict[str, Any] = {"point": name, "repeats": len(ok)}
        row.update({k: group[k].iloc[0] for k in keys if k in group})
        errors = [e for e in group.get("error", pd.Series(dtype=object)) if isinstance(e, str) and e]
        row.update(status=status, error=errors[0] if errors else None)
        for metric in metrics:
            values = pd.to_numeric(ok[metric], errors="coerce").tolist() if metric in ok else []
            mean, ci = mean_ci95(values)
            row[metric], row[f"{metric}_ci95"] = mean, ci
        rows.append(row)
    return pd.DataFrame(rows)


def mean_ci_display(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """``table`` for reading: each metric that has a ``<m>_ci95`` column becomes one ``mean ±ci`` text
    column (``n/a`` when missing) and the ``_ci95`` columns are dropped."""
    out = table.copy()
    for ci_col in [c for c in table.columns if str(c).endswith("_ci95")]:
        metric = str(ci_col)[: -len("_ci95")]
        if metric not in out:
            continue
        cells = []
        for mean, ci in zip(
            pd.to_numeric(out[metric], errors="coerce"), pd.to_numeric(out[ci_col], errors="coerce"), strict=True
        ):
            text = "n/a" if pd.isna(mean) else f"{mean:,.{digits}f}"
            cells.append(text if pd.isna(mean) or pd.isna(ci) else f"{text} ±{ci:,.{digits}f}")
        out[metric] = cells
        out = out.drop(columns=[ci_col])
    return out
