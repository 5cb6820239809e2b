"""The ``trace`` block of a trace replay's summary: the trace's own statistics (of the rows replayed, on
the replay's time scale) beside the measured ones, and the pacing error (docs/workloads.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.workload import WorkloadConfig
from ..load.trace_replay import load_replay
from ..load.trace_tools import trace_stats
from ..metrics import definitions as d
from ..metrics.columns import RequestColumns

__all__ = ["trace_block"]

_TRACE_KEYS = (
    "rows",
    "span_s",
    "mean_rate",
    "peak_rate_1s",
    "peak_rate_10s",
    "gap_cv",
    "input_tokens_per_s",
    "output_tokens_per_s",
    "input_length",
    "output_length",
    "hit_rate_infinite",
)


def _lengths(values: np.ndarray) -> dict[str, float | None]:
    if not values.size:
        return {"mean": None, "p50": None, "p99": None}
    return {
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
    }


def trace_block(config: WorkloadConfig, columns: RequestColumns) -> dict[str, Any]:
    """``{file, format, speedup, sessions, trace: {...}, measured: {...}, pacing_error_ms: {p50, p99, max}}``.

    ``sessions`` is ``trace_sessions``: with ``closed`` a later turn is scheduled when the previous
    turn's answer finished plus its think time, so the pacing error is measured against that.

    ``trace`` holds the replayed rows' statistics (:func:`..load.trace_tools.trace_stats`: offered rate,
    peak 1 s / 10 s rate, gap CV, token demand, input/output lengths, ideal hit rate with an unlimited
    cache and, when the config sets ``max_total_tokens``, with an LRU cache of that many tokens).
    ``measured`` holds the same quantities from the run's records (all requests, not only the measure
    window): achieved request rate, the prompt lengths sent and the output lengths the server reported
    for completed requests, and the server-reported cache hit rate. The pacing error is
    :func:`..metrics.definitions.pacing_error_ms`.
    """
    replay = load_replay(config)
    kv_tokens = getattr(config, "max_total_tokens", None)  # a server config's KV pool, when given
    own = trace_stats(replay.rows, replay.offsets_s, config.trace_block_size, [kv_tokens] if kv_tokens else [])
    ok = columns.success
    pacing = d.pacing_error_ms(columns)
    pacing = pacing[~np.isnan(pacing)]
    dur_s = d.duration_s(columns)
    return {
        "file": str(config.dataset_path),
        "format": replay.trace.format,
        "speedup": config.trace_speedup,
        "sessions": config.trace_sessions,
        "trace": {
            **{key: own[key] for key in _TRACE_KEYS if key in own},
            "max_total_tokens": kv_tokens,
            "hit_rate_at_max_total_tokens": next(iter(own["hit_rate_lru"].values()), None),
        },
        "measured": {
            "requests": len(columns),
            "request_throughput": d.request_throughput(columns, dur_s),
            "input_length": _lengths(columns.prompt_len[ok].astype(np.float64)),
            "output_length": _lengths(columns.output_tokens[ok].astype(np.float64)),
            "cache_hit_rate": d.cache_hit_rate(columns),
        },
        "pacing_error_ms": {
            "p50": float(np.percentile(pacing, 50)) if pacing.size else None,
            "p99": float(np.percentile(pacing, 99)) if pacing.size else None,
            "max": float(pacing.max()) if pacing.size else None,
        },
    }
