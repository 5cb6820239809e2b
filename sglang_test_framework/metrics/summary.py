"""Run summaries built from :mod:`.definitions`: our flat summary, the same numbers under SGLang
bench_serving's JSONL key names, and the per-request table. Pure functions of the records."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..records import RequestRecord
from . import definitions as d

__all__ = [
    "BENCH_LATENCY_KEYS",
    "BENCH_SETTING_KEYS",
    "BENCH_STAT_KEYS",
    "LATENCY_METRICS",
    "REQUEST_COLUMNS",
    "SUMMARY_METRICS",
    "bench_serving_view",
    "request_rows",
    "summarize",
]

# Per-request latency metrics (ms) summarised as ``<stat>_<name>``; ITL is added from its token list.
LATENCY_METRICS: Mapping[str, Callable[[RequestRecord], float | None]] = MappingProxyType(
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
MAX_FIRST_ERRORS = 5
REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id",
    "api_type",
    "worker_id",
    "group_id",
    "turn",
    "success",
    "error_type",
    "error",
    "http_status",
    "finish_reason",
    "scheduled_s",
    "arrival_s",
    "send_s",
    "first_token_s",
    "finish_s",
    "prompt_len",
    "expected_output_len",
    "output_tokens",
    "cached_tokens",
    "num_chunks",
    "ttft_ms",
    "tpot_ms",
    "mean_itl_ms",
    "max_itl_ms",
    "server_latency_ms",
    "total_latency_ms",
    "queue_time_ms",
    "schedule_lag_ms",
    "server_e2e_latency_ms",
    "server_queue_time_ms",
    "num_retractions",
)


def _totals(records: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = d.completed(records)
    dur_s = d.duration_s(records)
    return {
        "total_requests": len(records),
        "completed": len(ok),
        "failed": len(records) - len(ok),
        "success_rate": d.success_rate(records),
        "duration_s": dur_s,
        "total_input_tokens": d.total_input_tokens(records),
        "total_output_tokens": d.total_output_tokens(records),
        "request_throughput": d.request_throughput(records, dur_s),
        "input_throughput": d.input_throughput(records, dur_s),
        "output_throughput": d.output_throughput(records, dur_s),
        "total_throughput": d.total_throughput(records, dur_s),
        "concurrency": d.concurrency(records, dur_s),
        "max_in_flight": d.max_in_flight(records),
        "max_queue_depth": d.max_queue_depth(records),
        "peak_output_throughput": d.peak_output_throughput(records),
        "cache_hit_rate": d.cache_hit_rate(records),
    }


def _latency_stats(records: Sequence[RequestRecord]) -> dict[str, float | None]:
    ok = d.completed(records)
    out: dict[str, float | None] = {}
    for name, fn in LATENCY_METRICS.items():
        values = [v for r in ok if (v := fn(r)) is not None]
        out.update({f"{stat}_{name}": value for stat, value in d.stats(values).items()})
    itls = [x for r in ok for x in d.itl_ms(r)]
    out.update({f"{stat}_itl": value for stat, value in d.stats(itls).items()})
    return out


def summarize(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """The flat run summary (key names in docs/metrics.md).

    Keys: ``total_requests, completed, failed, success_rate, duration_s, total_input_tokens,
    total_output_tokens, request_throughput, input_throughput, output_throughput, total_throughput,
    concurrency, max_in_flight, max_queue_depth, peak_output_throughput, cache_hit_rate``;
    ``{mean,median,std,p90,p95,p99,min,max}_{m}`` in ms for m in :data:`SUMMARY_METRICS` (successful
    requests; ``None`` without values); ``errors_by_type`` and ``first_errors`` (up to 5 messages).
    """
    out = _totals(records)
    out.update(_latency_stats(records))
    out["errors_by_type"] = d.error_counts(records)
    out["first_errors"] = [f"{r.request_id}: {r.error}" for r in d.failed(records)][:MAX_FIRST_ERRORS]
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


def _rel_s(t_ns: int | None, t0_ns: int) -> float | None:
    return (t_ns - t0_ns) / d.NS_PER_S if t_ns else None


def _s_to_ms(value_s: float | None) -> float | None:
    return value_s * 1e3 if value_s is not None else None


def _row(r: RequestRecord, t0_ns: int) -> dict[str, Any]:
    itls = d.itl_ms(r)
    return {
        "request_id": r.request_id,
        "api_type": r.api_type,
        "worker_id": r.worker_id,
        "group_id": r.group_id,
        "turn": r.turn,
        "success": r.success,
        "error_type": r.error_type,
        "error": r.error,
        "http_status": r.http_status,
        "finish_reason": r.finish_reason,
        "scheduled_s": _rel_s(r.scheduled_ns, t0_ns),
        "arrival_s": _rel_s(r.arrival_ns, t0_ns),
        "send_s": _rel_s(r.send_ns, t0_ns),
        "first_token_s": _rel_s(r.first_token_ns, t0_ns),
        "finish_s": _rel_s(r.finish_ns, t0_ns),
        "prompt_len": r.prompt_len,
        "expected_output_len": r.expected_output_len,
        "output_tokens": r.output_tokens,
        "cached_tokens": r.cached_tokens,
        "num_chunks": len(r.chunk_ns),
        "ttft_ms": d.ttft_ms(r),
        "tpot_ms": d.tpot_ms(r),
        "mean_itl_ms": sum(itls) / len(itls) if itls else None,
        "max_itl_ms": max(itls) if itls else None,
        "server_latency_ms": d.server_latency_ms(r),
        "total_latency_ms": d.total_latency_ms(r),
        "queue_time_ms": d.queue_time_ms(r),
        "schedule_lag_ms": d.schedule_lag_ms(r),
        "server_e2e_latency_ms": _s_to_ms(r.server_e2e_latency_s),
        "server_queue_time_ms": _s_to_ms(r.server_queue_time_s),
        "num_retractions": r.num_retractions,
    }


def request_rows(records: Sequence[RequestRecord], t0_ns: int) -> list[dict[str, Any]]:
    """One dict per request with :data:`REQUEST_COLUMNS`: timestamps as seconds since ``t0_ns``
    (``None`` when not recorded), per-request metrics in ms, token counts, ids and error fields."""
    return [_row(r, t0_ns) for r in records]
