"""Per-worker breakdown of a routing run and load imbalance.

Inputs are the per-request DataFrame of :meth:`MetricsCollector.to_dataframe` (columns ``worker_id``,
``success``, ``prompt_len``, ``output_tokens``, ``cached_tokens``, ``server_latency_ms``, ``ttft_ms``) and
optionally each worker's own count of requests served (the increase of ``sglang:num_requests_total``,
:func:`counter_increase`), which attributes traffic even when the router hides which worker served a
request.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

__all__ = ["counter_increase", "load_imbalance", "load_imbalance_cv", "per_worker_table"]

_COLUMNS = (
    "worker_id",
    "requests",
    "failed",
    "prompt_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_hit_rate",
    "mean_latency_ms",
    "p50_latency_ms",
    "p99_latency_ms",
    "p50_ttft_ms",
    "p99_ttft_ms",
    "server_requests_served",
)


def _pct(series: pd.Series, q: float) -> float:
    return float(series.quantile(q)) if len(series) else math.nan


def per_worker_table(
    df: pd.DataFrame, worker_ids: Sequence[str], server_served: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row per worker (plus ``unattributed`` if some requests name no worker).

    ``requests`` counts every request attributed to the worker, ``failed`` those that failed;
    latency columns use successful requests only; ``cache_hit_rate`` = Σ cached / Σ prompt tokens.
    """
    server_served = server_served or {}
    rows = []
    ids = list(worker_ids)
    if not df.empty and df["worker_id"].isna().any():
        ids.append("unattributed")
    for wid in ids:
        sub = df[df["worker_id"].isna()] if wid == "unattributed" else df[df["worker_id"] == wid]
        ok = sub[sub["success"].astype(bool)] if not sub.empty else sub
        prompt = float(ok["prompt_len"].sum()) if not ok.empty else 0.0
        cached = float(ok["cached_tokens"].fillna(0).sum()) if not ok.empty else 0.0
        rows.append(
            {
                "worker_id": wid,
                "requests": len(sub),
                "failed": int((~sub["success"].astype(bool)).sum()) if not sub.empty else 0,
                "prompt_tokens": int(prompt),
                "output_tokens": int(ok["output_tokens"].sum()) if not ok.empty else 0,
                "cached_tokens": int(cached),
                "cache_hit_rate": cached / prompt if prompt else math.nan,
                "mean_latency_ms": float(ok["server_latency_ms"].mean()) if not ok.empty else math.nan,
                "p50_latency_ms": _pct(ok["server_latency_ms"], 0.5) if not ok.empty else math.nan,
                "p99_latency_ms": _pct(ok["server_latency_ms"], 0.99) if not ok.empty else math.nan,
                "p50_ttft_ms": _pct(ok["ttft_ms"].dropna(), 0.5) if not ok.empty else math.nan,
                "p99_ttft_ms": _pct(ok["ttft_ms"].dropna(), 0.99) if not ok.empty else math.nan,
                "server_requests_served": server_served.get(wid, math.nan),
            }
        )
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def _requests_per_worker(table: pd.DataFrame) -> pd.Series | None:
    """Requests per worker (attributed by header; else the workers' own served counts); None without
    workers or requests."""
    workers = table[table["worker_id"] != "unattributed"]
    counts = workers["requests"].astype(float)
    if counts.sum() == 0:
        counts = workers["server_requests_served"].astype(float).dropna()
    if counts.empty or counts.mean() == 0:
        return None
    return counts


def load_imbalance(table: pd.DataFrame) -> float:
    """max / mean of requests per worker (1.0 = perfectly even). Uses the workers' own served counts
    when no request is attributed by header."""
    counts = _requests_per_worker(table)
    return math.nan if counts is None else float(counts.max() / counts.mean())


def load_imbalance_cv(table: pd.DataFrame) -> float:
    """Coefficient of variation of requests per worker: population std / mean of the per-worker request
    counts (0 = perfectly even; NaN without workers or requests). Counts as in :func:`load_imbalance`."""
    counts = _requests_per_worker(table)
    return math.nan if counts is None else float(counts.std(ddof=0) / counts.mean())


def counter_increase(values: Iterable[float]) -> tuple[float, bool]:
    """How much a counter grew over its samples in time order, and whether it was reset meanwhile.

    Prometheus's rule for counter resets: a sample below the one before means the process restarted and
    its counter began again at 0, so the increase across that step is the new value itself (never a
    negative count). NaN samples (not reachable) are skipped. Returns ``(NaN, False)`` with fewer than
    two samples; after a reset the increase is a lower bound (what was counted between the last sample
    before the restart and the restart itself is not seen).
    """
    known = [float(v) for v in values if not math.isnan(float(v))]
    if len(known) < 2:
        return math.nan, False
    total, reset = 0.0, False
    for before, after in itertools.pairwise(known):
        if after < before:
            total += after
            reset = True
        else:
            total += after - before
    return total, reset
