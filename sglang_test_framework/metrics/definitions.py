"""Every metric, defined once. Per-request metrics take a :class:`RequestRecord`; run-level metrics
take the list of records. Units are in the names (``_ms``, ``_s``); docs/metrics.md lists them all."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..records import RequestRecord

__all__ = [
    "STAT_KEYS",
    "cache_hit_rate",
    "completed",
    "concurrency",
    "duration_s",
    "itl_ms",
    "max_in_flight",
    "max_queue_depth",
    "peak_output_throughput",
    "queue_time_ms",
    "schedule_lag_ms",
    "server_latency_ms",
    "slo_attainment",
    "stats",
    "total_latency_ms",
    "tpot_ms",
    "ttft_ms",
]

STAT_KEYS = ("mean", "median", "std", "p90", "p95", "p99", "min", "max")
NS_PER_MS = 1e6
QUEUE_THRESHOLD_NS = 1_000_000


# ----------------------------------------------------------------------------- per request
def server_latency_ms(r: RequestRecord) -> float | None:
    """Server latency (ms) = finish − send: the time the request spent with the server."""
    return (r.finish_ns - r.send_ns) / NS_PER_MS if r.finish_ns is not None and r.send_ns else None


def total_latency_ms(r: RequestRecord) -> float | None:
    """Total latency (ms) = finish − arrival: includes waiting for a client concurrency slot."""
    return (r.finish_ns - r.arrival_ns) / NS_PER_MS if r.finish_ns is not None and r.arrival_ns else None


def queue_time_ms(r: RequestRecord) -> float | None:
    """Client queue time (ms) = send − arrival: waiting for a ``max_concurrency`` slot."""
    return (r.send_ns - r.arrival_ns) / NS_PER_MS if r.send_ns and r.arrival_ns else None


def schedule_lag_ms(r: RequestRecord) -> float | None:
    """Dispatcher lag (ms) = arrival − scheduled: how late the open-loop timer fired."""
    return (r.arrival_ns - r.scheduled_ns) / NS_PER_MS if r.arrival_ns and r.scheduled_ns else None


def ttft_ms(r: RequestRecord) -> float | None:
    """Time to first token (ms) = first chunk with output tokens − send (non-streaming: the latency)."""
    return (r.first_token_ns - r.send_ns) / NS_PER_MS if r.first_token_ns is not None and r.send_ns else None


def itl_ms(r: RequestRecord) -> list[float]:
    """Inter-token latencies (ms): for each chunk i ≥ 1 carrying k new tokens, k gaps of
    (t_i − t_{i−1}) / k (bench_serving's rule for cumulative SGLang streams)."""
    out: list[float] = []
    ns, toks = r.chunk_ns, r.chunk_tokens
    for i in range(1, len(ns)):
        k = toks[i]
        if k > 0:
            out.extend([(ns[i] - ns[i - 1]) / NS_PER_MS / k] * k)
    return out


def tpot_ms(r: RequestRecord) -> float | None:
    """Time per output token after the first (ms) = (server latency − TTFT) / (output tokens − 1);
    defined only when more than one token was generated."""
    lat, ttft = server_latency_ms(r), ttft_ms(r)
    if lat is None or ttft is None or r.output_tokens <= 1:
        return None
    return (lat - ttft) / (r.output_tokens - 1)


# ----------------------------------------------------------------------------- run level
def completed(records: Sequence[RequestRecord]) -> list[RequestRecord]:
    """Successful requests."""
    return [r for r in records if r.success]


def duration_s(records: Sequence[RequestRecord]) -> float:
    """Benchmark duration (s) = last finish − first send over all sent requests."""
    sends = [r.send_ns for r in records if r.send_ns]
    ends = [r.finish_ns for r in records if r.finish_ns is not None]
    if not sends or not ends:
        return 0.0
    return max(0.0, (max(ends) - min(sends)) / 1e9)


def concurrency(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Average requests in flight = Σ server latency of completed requests / duration (Little's law)."""
    if dur_s <= 0:
        return 0.0
    return sum((server_latency_ms(r) or 0.0) for r in completed(records)) / 1000.0 / dur_s


def _max_overlap(intervals: Iterable[tuple[int, int]]) -> int:
    events = []
    for start, end in intervals:
        events.append((start, 1))
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def max_in_flight(records: Sequence[RequestRecord]) -> int:
    """Most requests simultaneously between send and finish (sweep line)."""
    return _max_overlap((r.send_ns, r.finish_ns) for r in records if r.send_ns and r.finish_ns is not None)


def max_queue_depth(records: Sequence[RequestRecord]) -> int:
    """Most requests simultaneously waiting (> 1 ms) between arrival and send: the client-side queue
    in front of a ``max_concurrency`` limit (sub-millisecond gaps are request encoding, not queueing)."""
    return _max_overlap(
        (r.arrival_ns, r.send_ns) for r in records if r.arrival_ns and r.send_ns - r.arrival_ns > QUEUE_THRESHOLD_NS
    )


def peak_output_throughput(records: Sequence[RequestRecord]) -> float:
    """Peak output tokens/s over 1-second buckets of token arrival times."""
    times: list[int] = []
    weights: list[int] = []
    for r in completed(records):
        times.extend(r.chunk_ns)
        weights.extend(r.chunk_tokens)
    if not times:
        return 0.0
    t = np.asarray(times, dtype=np.int64)
    buckets = (t - t.min()) // 1_000_000_000
    return float(np.bincount(buckets, weights=np.asarray(weights, dtype=float)).max())


def cache_hit_rate(records: Sequence[RequestRecord]) -> float | None:
    """Prefix cache hit rate = Σ cached_tokens / Σ prompt tokens over completed requests that report
    cached_tokens (None if none does)."""
    rows = [r for r in completed(records) if r.cached_tokens is not None]
    prompt = sum(r.prompt_len for r in rows)
    return sum(r.cached_tokens or 0 for r in rows) / prompt if rows and prompt else None


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """mean, median, std, p90, p95, p99, min, max (None for no values)."""
    if not values:
        return dict.fromkeys(STAT_KEYS)
    a = np.asarray(values, dtype=float)
    p90, p95, p99 = np.percentile(a, [90, 95, 99])
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "std": float(a.std()),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def slo_attainment(records: Sequence[RequestRecord], slos_ms: Mapping[str, float], dur_s: float) -> dict[str, Any]:
    """Goodput (bench_serving's definition). A request is good if it succeeded and met every SLO
    (keys ``ttft``, ``tpot``, ``e2el`` in ms; single-token requests count as TPOT 0).
    ``request_goodput`` = good / duration; ``slo_attainment`` = good / all requests sent."""
    getters = {"ttft": ttft_ms, "tpot": lambda r: tpot_ms(r) or 0.0, "e2el": server_latency_ms}
    unknown = set(slos_ms) - set(getters)
    if unknown:
        raise ValueError(f"unknown SLO keys {sorted(unknown)}; use ttft, tpot, e2el")
    by_metric = dict.fromkeys(slos_ms, 0)
    good = 0
    for r in records:
        ok_all = r.success
        for key, limit in slos_ms.items():
            value = getters[key](r) if r.success else None
            ok = value is not None and value <= limit
            by_metric[key] += int(ok)
            ok_all = ok_all and ok
        good += int(ok_all)
    n = len(records)
    return {
        "goodput_slos_ms": dict(slos_ms),
        "good_requests": good,
        "request_goodput": good / dur_s if dur_s > 0 else 0.0,
        "slo_attainment": good / n if n else 0.0,
        "slo_attainment_by_metric": {k: v / n if n else 0.0 for k, v in by_metric.items()},
    }


def nan_to_none(value: float | None) -> float | None:
    """JSON-friendly: NaN → None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
