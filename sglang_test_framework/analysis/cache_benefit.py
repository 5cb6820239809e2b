"""Cache benefit tables: the same workload run in several cache modes (``disabled``: no radix cache;
``cold``: cache flushed before the load; ``warm``: cache pre-warmed by a first pass), compared by prompt
length bucket and by round (turn). Pure functions of the per-request tables (``requests.csv`` columns)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "COMPARISONS",
    "DEFAULT_BUCKET_EDGES",
    "bucket_labels",
    "cache_benefit_tables",
    "format_cache_benefit",
]

DEFAULT_BUCKET_EDGES: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384)
"""Prompt-length bucket edges (tokens): buckets ``< 512``, ``512–1023``, …, ``≥ 16384``."""

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("warm_vs_cold", "cold", "warm"),
    ("cold_vs_disabled", "disabled", "cold"),
    ("warm_vs_disabled", "disabled", "warm"),
)
"""(name, baseline mode, treatment mode): speedup = baseline median ÷ treatment median."""

_METRICS: tuple[tuple[str, str], ...] = (("ttft", "ttft_ms"), ("latency", "server_latency_ms"))


def bucket_labels(edges: Sequence[int]) -> list[str]:
    """Labels of the buckets ``edges`` define: ``<e0``, ``e0-(e1-1)``, …, ``≥eN``."""
    labels = [f"<{edges[0]}"]
    labels += [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f">={edges[-1]}"]


def _bucket_column(prompt_len: pd.Series, edges: Sequence[int]) -> pd.Series:
    labels = bucket_labels(edges)
    index = np.searchsorted(np.asarray(edges), prompt_len.to_numpy(dtype=np.float64), side="right")
    return pd.Series([labels[i] for i in index], index=prompt_len.index)


def _median(values: pd.Series) -> float | None:
    clean = pd.to_numeric(values, errors="coerce").dropna()
    return float(clean.median()) if len(clean) else None


def _group_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Count, completed, median TTFT / server latency (ms) and cached share of one group's requests."""
    ok = frame[frame["success"].astype(bool)]
    cached = pd.to_numeric(ok["cached_tokens"], errors="coerce")
    prompt = pd.to_numeric(ok["prompt_len"], errors="coerce")
    known = cached.notna() & prompt.notna()
    total_prompt = float(prompt[known].sum())
    return {
        "requests": len(frame),
        "completed": len(ok),
        "mean_prompt_len": float(prompt.mean()) if len(prompt.dropna()) else None,
        "median_ttft_ms": _median(ok["ttft_ms"]),
        "median_latency_ms": _median(ok["server_latency_ms"]),
        "cached_share": float(cached[known].sum()) / total_prompt if total_prompt > 0 else None,
    }


def _speedup(base: float | None, treat: float | None) -> float | None:
    if base is None or treat is None or treat <= 0 or not math.isfinite(base / treat):
        return None
    return base / treat


def _rows(tables: Mapping[str, pd.DataFrame], key: str, order: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per value of ``key`` (in ``order``): each mode's stats and each comparison's speedups."""
    rows: list[dict[str, Any]] = []
    for value in order:
        row: dict[str, Any] = {key: value if not isinstance(value, np.integer) else int(value), "modes": {}}
        for mode, frame in tables.items():
            part = frame[frame[key] == value]
            if len(part):
                row["modes"][mode] = _group_stats(part)
        row["speedups"] = _row_speedups(row["modes"])
        rows.append(row)
    return rows


def _row_speedups(modes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, base, treat in COMPARISONS:
        if base in modes and treat in modes:
            out[name] = {
                metric: _speedup(modes[base][f"median_{metric}_ms"], modes[treat][f"median_{metric}_ms"])
                for metric, _ in _METRICS
            }
    return out


def cache_benefit_tables(
    tables: Mapping[str, pd.DataFrame], edges: Sequence[int] = DEFAULT_BUCKET_EDGES
) -> dict[str, Any]:
    """The comparison of the modes' request tables (``{mode: requests table}``; columns of
    ``requests.csv``): ``overall``, ``by_bucket`` (prompt length) and ``by_turn`` rows, each with every
    mode's request count, median TTFT and server latency (ms, completed requests) and cached share
    (Σ cached_tokens ÷ Σ prompt_len), and the speedups of :data:`COMPARISONS` (baseline median ÷
    treatment median; > 1 means the treatment is faster). Buckets and turns without requests are left out."""
    prepared: dict[str, pd.DataFrame] = {}
    for mode, frame in tables.items():
        frame = frame.copy()
        frame["bucket"] = _bucket_column(pd.to_numeric(frame["prompt_len"], errors="coerce").fillna(0), edges)
        frame["turn"] = pd.to_numeric(frame["turn"], errors="coerce").fillna(0).astype(int)
        frame["all"] = "all"
        prepared[mode] = frame
    present_buckets = {b for f in prepared.values() for b in f["bucket"]}
    buckets = [b for b in bucket_labels(edges) if b in present_buckets]
    turns = sorted({int(t) for f in prepared.values() for t in f["turn"]})
    return {
        "bucket_edges": list(edges),
        "comparisons": [{"name": n, "baseline": b, "treatment": t} for n, b, t in COMPARISONS],
        "overall": _rows(prepared, "all", ["all"])[0],
        "by_bucket": _rows(prepared, "bucket", buckets),
        "by_turn": _rows(prepared, "turn", turns),
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f}{unit}"


def _table(rows: Sequence[Mapping[str, Any]], key: str, title: str, modes: Sequence[str]) -> list[str]:
    names = [n for n, b, t in COMPARISONS if b in modes and t in modes]
    trio = "/".join(modes)
    pairs = ", ".join(n.replace("_vs_", " vs ") for n in names)
    header = [title, "requests", f"TTFT ms ({trio})", f"cached % ({trio})", f"TTFT speedup ({pairs})"]
    header.append(f"E2E speedup ({pairs})")
    lines = [header]
    for row in rows:
        stats = row["modes"]
        share = [stats.get(m, {}).get("cached_share") for m in modes]
        lines.append(
            [
                str(row[key]),
                "/".join(str(stats.get(m, {}).get("requests", 0)) for m in modes),
                " / ".join(_fmt(stats.get(m, {}).get("median_ttft_ms")) for m in modes),
                " / ".join(_fmt(v * 100 if v is not None else None) for v in share),
                " / ".join(_fmt(row["speedups"].get(n, {}).get("ttft"), "x") for n in names),
                " / ".join(_fmt(row["speedups"].get(n, {}).get("latency"), "x") for n in names),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=False)))
        for line in lines
    ]


def format_cache_benefit(result: Mapping[str, Any]) -> str:
    """The console tables: median TTFT (ms) and cached share per mode, and the speedups, by prompt length
    bucket and by turn."""
    modes = list(result["overall"]["modes"])
    out = [
        "Cache benefit (medians of completed requests; speedup A vs B = median of B ÷ median of A, > 1: A is faster)"
    ]
    out += _table([result["overall"]], "all", "overall", modes)
    out += ["", *_table(result["by_bucket"], "bucket", "prompt tokens", modes)]
    out += ["", *_table(result["by_turn"], "turn", "turn", modes)]
    return "\n".join(out)
