"""Run summaries built from :mod:`.definitions`: our flat summary and the same numbers under SGLang
bench_serving's JSONL key names. Pure functions of the run's columns (or records), vectorised."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import definitions as d
from .columns import RequestColumns

__all__ = [
    "BENCH_LATENCY_KEYS",
    "BENCH_SETTING_KEYS",
    "BENCH_STAT_KEYS",
    "LATENCY_METRICS",
    "SUMMARY_METRICS",
    "bench_serving_view",
    "summarize",
]

# Per-request latency metrics (ms) summarised as ``<stat>_<name>``; ITL is added from the token gaps.
LATENCY_METRICS: Mapping[str, d.PerRequestMetric] = MappingProxyType(
    {
        "server_latency": d.server_latency_ms,
        "total_latency": d.total_latency_ms,
        "queue_time": d.queue_time_ms,
        "ttft": d.ttft_ms,
        "tpot": d.tpot_ms,
        "schedule_lag": d.schedule_lag_ms,
    }
)
SUMMARY_METRICS: tuple[str, ...] = (*LATENCY_METRICS, "itl")
# bench_serving's run-setting keys: always written (None when the caller does not give them).
BENCH_SETTING_KEYS: tuple[str, ...] = (
    "tag",
    "backend",
    "dataset_name",
    "request_rate",
    "max_concurrency",
    "sharegpt_output_len",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "server_info",
)
# (our metric, bench_serving's) for the ``{stat}_{name}_ms`` latency keys.
BENCH_LATENCY_KEYS: tuple[tuple[str, str], ...] = (
    ("server_latency", "e2e_latency"),
    ("ttft", "ttft"),
    ("tpot", "tpot"),
    ("itl", "itl"),
)
BENCH_STAT_KEYS: tuple[str, ...] = ("mean", "median", "std", "p90", "p95", "p99")


def _totals(c: RequestColumns) -> dict[str, Any]:
    # First: it needs the most temporary memory (two sorted copies of a timestamp column), and the
    # process's peak stays lower before other steps' freed blocks pile up in the allocator.
    in_flight = d.max_in_flight(c)
    dur_s = d.duration_s(c)
    completed = d.completed(c)
    return {
        "total_requests": len(c),
        "completed": completed,
        "failed": len(c) - completed,
        "success_rate": d.success_rate(c),
        "not_sent": d.not_sent(c),
        "duration_s": dur_s,
        "total_input_tokens": d.total_input_tokens(c),
        "total_output_tokens": d.total_output_tokens(c),
        "request_throughput": d.request_throughput(c, dur_s),
        "input_throughput": d.input_throughput(c, dur_s),
        "output_throughput": d.output_throughput(c, dur_s),
        "total_throughput": d.total_throughput(c, dur_s),
        "concurrency": d.concurrency(c, dur_s),
        "max_in_flight": in_flight,
        "max_queue_depth": d.max_queue_depth(c),
        "peak_output_throughput": d.peak_output_throughput(c),
        "cache_hit_rate": d.cache_hit_rate(c),
        "coalesced_chunks": d.coalesced_chunks(c),
        "coalesced_chunk_share": d.coalesced_chunk_share(c),
    }


def _latency_stats(c: RequestColumns) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, metric in LATENCY_METRICS.items():
        values = metric(c)
        values[~c.success] = np.nan
        out.update({f"{stat}_{name}": value for stat, value in d.stats_in_place(values).items()})
        del values
    out.update({f"{stat}_itl": value for stat, value in d.itl_stats(c).items()})
    return out


def summarize(data: d.RunData) -> dict[str, Any]:
    """The flat run summary (key names in docs/metrics.md) of the run's columns or records.

    Keys: ``total_requests, completed, failed, success_rate, duration_s, total_input_tokens,
    total_output_tokens, request_throughput, input_throughput, output_throughput, total_throughput,
    concurrency, max_in_flight, max_queue_depth, peak_output_throughput, cache_hit_rate, coalesced_chunks,
    coalesced_chunk_share``;
    ``{mean,median,std,p90,p95,p99,min,max}_{m}`` in ms for m in :data:`SUMMARY_METRICS` (successful
    requests; ``None`` without values); ``errors_by_type`` and ``first_errors`` (up to 5 messages).
    """
    c = d.as_columns(data)
    out = _totals(c)
    out.update(_latency_stats(c))
    out["errors_by_type"] = d.error_counts(c)
    out["first_errors"] = list(c.first_errors)
    return out


def bench_serving_view(
    summary: Mapping[str, Any], extra: Mapping[str, Any] | None = None, goodput: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``summary`` (from :func:`summarize`) under bench_serving's JSONL key names.

    Args:
        summary: Our flat summary.
        extra: Run settings; bench_serving's setting keys (:data:`BENCH_SETTING_KEYS`) are always present
            (``None`` when missing) and every other key of ``extra`` is copied unless it would replace a
            measured key.
        goodput: The block of :func:`definitions.slo_attainment`, added when SLOs were given.
    """
    extra = extra or {}
    out: dict[str, Any] = {key: extra.get(key) for key in BENCH_SETTING_KEYS}
    out.update(
        {
            "duration": summary["duration_s"],
            "completed": summary["completed"],
            "total_input_tokens": summary["total_input_tokens"],
            "total_input_text_tokens": summary["total_input_tokens"],
            "total_input_vision_tokens": 0,
            "total_output_tokens": summary["total_output_tokens"],
            # We count tokens from the server's usage fields and do not re-tokenize the text.
            "total_output_tokens_retokenized": summary["total_output_tokens"],
        }
    )
    for key in ("request_throughput", "input_throughput", "output_throughput", "total_throughput", "concurrency"):
        out[key] = summary[key]
    for ours, theirs in BENCH_LATENCY_KEYS:
        out.update({f"{stat}_{theirs}_ms": summary[f"{stat}_{ours}"] for stat in BENCH_STAT_KEYS})
    out["max_itl_ms"] = summary["max_itl"]
    out["accept_length"] = None  # speculative decoding acceptance: not measured by the client
    out["max_output_tokens_per_s"] = summary["peak_output_throughput"]
    out["max_concurrent_requests"] = summary["max_in_flight"]
    if goodput is not None:
        out.update({k: goodput[k] for k in ("goodput_slos_ms", "request_goodput", "slo_attainment")})
        out["slo_attainment_by_metric"] = goodput["slo_attainment_by_metric"]
    for key, value in extra.items():
        out.setdefault(key, value)
    return out
