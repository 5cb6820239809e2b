"""Every metric, defined once: one small function each, with its unit and formula in the docstring.

Per-request metrics take one :class:`RequestRecord` and return ``None`` when a timestamp they need was
not recorded. Run-level metrics take the run's records. A timestamp of ``0`` means "not recorded"
(``time.monotonic_ns()`` is never 0 on a running system; ``RequestRecord`` uses 0 as its default).
Latency statistics use successful requests only; failed requests are counted, not timed.
docs/metrics.md lists every metric and its bench_serving name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..records import RequestRecord

__all__ = [
    "NS_PER_MS",
    "NS_PER_S",
    "QUEUE_WAIT_THRESHOLD_NS",
    "SLO_KEYS",
    "STAT_KEYS",
    "cache_hit_rate",
    "completed",
    "concurrency",
    "duration_s",
    "error_counts",
    "failed",
    "input_throughput",
    "itl_ms",
    "max_in_flight",
    "max_queue_depth",
    "meets_slos",
    "output_throughput",
    "peak_output_throughput",
    "queue_time_ms",
    "request_goodput",
    "request_throughput",
    "schedule_lag_ms",
    "server_latency_ms",
    "slo_attainment",
    "slo_attainment_by_metric",
    "stats",
    "success_rate",
    "token_times_ns",
    "total_input_tokens",
    "total_latency_ms",
    "total_output_tokens",
    "total_throughput",
    "tpot_ms",
    "ttft_ms",
]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
STAT_KEYS: tuple[str, ...] = ("mean", "median", "std", "p90", "p95", "p99", "min", "max")
SLO_KEYS: tuple[str, ...] = ("ttft", "tpot", "e2el")
# Below this wait, arrival → send is the sender building the request, not a concurrency queue.
QUEUE_WAIT_THRESHOLD_NS = 1_000_000


def _span_ms(start_ns: int | None, end_ns: int | None) -> float | None:
    if not start_ns or not end_ns:
        return None
    return (end_ns - start_ns) / NS_PER_MS


# ----------------------------------------------------------------------------- per request (ms)
def server_latency_ms(r: RequestRecord) -> float | None:
    """Server latency (ms) = ``finish_ns − send_ns``: time with the server (bench_serving ``e2e_latency``)."""
    return _span_ms(r.send_ns, r.finish_ns)


def total_latency_ms(r: RequestRecord) -> float | None:
    """Total latency (ms) = ``finish_ns − arrival_ns``: includes the wait for a client concurrency slot."""
    return _span_ms(r.arrival_ns, r.finish_ns)


def queue_time_ms(r: RequestRecord) -> float | None:
    """Client queue time (ms) = ``send_ns − arrival_ns``: the wait for a ``max_concurrency`` slot."""
    return _span_ms(r.arrival_ns, r.send_ns)


def schedule_lag_ms(r: RequestRecord) -> float | None:
    """Dispatcher lag (ms) = ``arrival_ns − scheduled_ns``: how late the open-loop timer fired."""
    return _span_ms(r.scheduled_ns, r.arrival_ns)


def ttft_ms(r: RequestRecord) -> float | None:
    """Time to first token (ms) = ``first_token_ns − send_ns``.

    The first token is the first chunk carrying output tokens; without streaming the sender sets it to
    the finish time, so TTFT equals the latency (as in bench_serving).
    """
    return _span_ms(r.send_ns, r.first_token_ns)


def _token_chunks(r: RequestRecord) -> tuple[list[int], list[int]]:
    """``(chunk_ns, chunk_tokens)`` of the chunks that carried new output tokens."""
    pairs = [(t, k) for t, k in zip(r.chunk_ns, r.chunk_tokens, strict=False) if k > 0]
    return [t for t, _ in pairs], [k for _, k in pairs]


def itl_ms(r: RequestRecord) -> list[float]:
    """Inter-token latencies (ms): for each chunk i ≥ 1 carrying k = ``chunk_tokens[i]`` new tokens,
    k values of ``(chunk_ns[i] − chunk_ns[i−1]) / k`` (bench_serving's rule for SGLang streams, where
    one event can carry several tokens). Chunks without new tokens are skipped, so the gap runs from
    the previous chunk that carried tokens (as in bench_serving)."""
    ns, tokens = _token_chunks(r)
    out: list[float] = []
    for i in range(1, len(ns)):
        out.extend([(ns[i] - ns[i - 1]) / NS_PER_MS / tokens[i]] * tokens[i])
    return out


def tpot_ms(r: RequestRecord) -> float | None:
    """Time per output token after the first (ms) = ``(server_latency − ttft) / (output_tokens − 1)``;
    ``None`` unless more than one token was generated."""
    latency, ttft = server_latency_ms(r), ttft_ms(r)
    if latency is None or ttft is None or r.output_tokens <= 1:
        return None
    return (latency - ttft) / (r.output_tokens - 1)


def token_times_ns(r: RequestRecord) -> npt.NDArray[np.int64]:
    """Reconstructed time (ns) of every output token: the first token-carrying chunk's tokens at its
    time; each later chunk's k tokens spread evenly over the gap since the previous token-carrying
    chunk (the ITL rule), the last one at the chunk's own time."""
    chunk_ns, chunk_tokens = _token_chunks(r)
    ns = np.asarray(chunk_ns, dtype=np.int64)
    k = np.asarray(chunk_tokens, dtype=np.int64)
    if ns.size == 0:
        return ns
    first = np.repeat(ns[:1], int(k[0]))
    later_k = k[1:]
    chunk = np.repeat(np.arange(later_k.size), later_k)
    step = np.arange(chunk.size) - np.repeat(np.cumsum(later_k) - later_k, later_k) + 1
    later = ns[:-1][chunk] + (np.diff(ns)[chunk] * step) // later_k[chunk]
    return np.concatenate([first, later]).astype(np.int64)


# ----------------------------------------------------------------------------- run level: counts
def completed(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The successful requests (``success`` is True); ``len()`` of it is the ``completed`` count."""
    return [r for r in records if r.success]


def failed(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The failed requests (HTTP/stream errors, timeouts, cancelled); ``len()`` is ``failed``."""
    return [r for r in records if not r.success]


def success_rate(records: Sequence[RequestRecord]) -> float:
    """Share of requests that succeeded = completed / all records (0.0 for no records)."""
    return len(completed(records)) / len(records) if records else 0.0


def error_counts(records: Iterable[RequestRecord]) -> dict[str, int]:
    """Failed requests by ``error_type`` (``unknown`` when unset), most frequent first."""
    return dict(Counter(r.error_type or "unknown" for r in records if not r.success).most_common())


def total_input_tokens(records: Iterable[RequestRecord]) -> int:
    """Σ ``prompt_len`` (tokens) over completed requests (bench_serving ``total_input_tokens``)."""
    return sum(r.prompt_len for r in records if r.success)


def total_output_tokens(records: Iterable[RequestRecord]) -> int:
    """Σ ``output_tokens`` over completed requests (bench_serving ``total_output_tokens``)."""
    return sum(r.output_tokens for r in records if r.success)


# ----------------------------------------------------------------------------- run level: rates
def duration_s(records: Sequence[RequestRecord]) -> float:
    """Run duration (s) = last ``finish_ns`` − first ``send_ns``, over every request that was sent
    (failed ones included, never-sent ones excluded); 0.0 when nothing was sent and finished."""
    sends = [r.send_ns for r in records if r.send_ns]
    ends = [r.finish_ns for r in records if r.send_ns and r.finish_ns]
    if not sends or not ends:
        return 0.0
    return max(0.0, (max(ends) - min(sends)) / NS_PER_S)


def _per_s(amount: float, dur_s: float) -> float:
    return amount / dur_s if dur_s > 0 else 0.0


def request_throughput(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Requests/s = completed / ``dur_s`` (0.0 for a zero duration)."""
    return _per_s(len(completed(records)), dur_s)


def input_throughput(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Input tokens/s = Σ ``prompt_len`` of completed requests / ``dur_s``."""
    return _per_s(total_input_tokens(records), dur_s)


def output_throughput(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Output tokens/s = Σ ``output_tokens`` of completed requests / ``dur_s``."""
    return _per_s(total_output_tokens(records), dur_s)


def total_throughput(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Tokens/s = (Σ prompt + Σ output tokens of completed requests) / ``dur_s``."""
    return _per_s(total_input_tokens(records) + total_output_tokens(records), dur_s)


def concurrency(records: Sequence[RequestRecord], dur_s: float) -> float:
    """Average requests in flight = Σ server latency (s) of completed requests / ``dur_s`` (Little's
    law; bench_serving's ``concurrency``)."""
    return _per_s(sum(server_latency_ms(r) or 0.0 for r in completed(records)) / 1e3, dur_s)


def _max_overlap(intervals: Iterable[tuple[int, int]]) -> int:
    """Most intervals open at once; an interval ending when another starts does not overlap it."""
    events = sorted(ev for start, end in intervals for ev in ((start, 1), (end, -1)))
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def max_in_flight(records: Iterable[RequestRecord]) -> int:
    """Most requests at once between ``send_ns`` and ``finish_ns`` (exact sweep line; failures included)."""
    return _max_overlap((r.send_ns, r.finish_ns) for r in records if r.send_ns and r.finish_ns)


def max_queue_depth(records: Iterable[RequestRecord], min_wait_ns: int = QUEUE_WAIT_THRESHOLD_NS) -> int:
    """Client queue depth: most requests at once that had arrived but were not yet sent (sweep line
    over ``[arrival_ns, send_ns]``). Waits shorter than ``min_wait_ns`` (default 1 ms) are the sender
    encoding the request, not queueing, and are ignored."""
    return _max_overlap(
        (r.arrival_ns, r.send_ns) for r in records if r.arrival_ns and r.send_ns - r.arrival_ns >= min_wait_ns
    )


def peak_output_throughput(records: Sequence[RequestRecord]) -> float:
    """Peak output tokens/s: most tokens of completed requests (:func:`token_times_ns`) in one 1-second
    bucket, buckets counted from the first send (bench_serving ``max_output_tokens_per_s``)."""
    times = [token_times_ns(r) for r in completed(records)]
    all_ns = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
    if all_ns.size == 0:
        return 0.0
    sends = [r.send_ns for r in records if r.send_ns]
    origin = min(min(sends), int(all_ns.min())) if sends else int(all_ns.min())
    return float(np.bincount((all_ns - origin) // NS_PER_S).max())


def cache_hit_rate(records: Iterable[RequestRecord]) -> float | None:
    """Prefix-cache hit rate = Σ ``cached_tokens`` / Σ ``prompt_len`` over completed requests that report
    ``cached_tokens``; ``None`` when none reports it (or their prompts sum to 0)."""
    rows = [r for r in records if r.success and r.cached_tokens is not None]
    prompt = sum(r.prompt_len for r in rows)
    return sum(r.cached_tokens or 0 for r in rows) / prompt if prompt else None


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """mean, median, std (population, as numpy/bench_serving), p90, p95, p99 (linear interpolation),
    min, max of ``values``, keyed by :data:`STAT_KEYS`; every value ``None`` for no values."""
    if len(values) == 0:
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


# ----------------------------------------------------------------------------- goodput / SLOs
def _slo_values(slos_ms: Mapping[str, float]) -> dict[str, Callable[[RequestRecord], float | None]]:
    unknown = sorted(set(slos_ms) - set(SLO_KEYS))
    if unknown:
        raise ValueError(f"unknown SLO keys {unknown}; use {', '.join(SLO_KEYS)} (milliseconds)")
    getters: dict[str, Callable[[RequestRecord], float | None]] = {
        "ttft": ttft_ms,
        "tpot": lambda r: tpot_ms(r) or 0.0,  # single-token requests count as TPOT 0 (bench_serving)
        "e2el": server_latency_ms,
    }
    return {key: getters[key] for key in slos_ms}


def _meets(r: RequestRecord, limit_ms: float, getter: Callable[[RequestRecord], float | None]) -> bool:
    value = getter(r) if r.success else None
    return value is not None and value <= limit_ms


def meets_slos(r: RequestRecord, slos_ms: Mapping[str, float]) -> bool:
    """True if ``r`` succeeded and met every SLO: ``ttft`` ≤, ``tpot`` ≤ (0 for one token), ``e2el``
    (server latency) ≤ the limit in ms. Unknown SLO keys raise ``ValueError``."""
    getters = _slo_values(slos_ms)
    return r.success and all(_meets(r, slos_ms[k], getters[k]) for k in getters)


def request_goodput(records: Sequence[RequestRecord], slos_ms: Mapping[str, float], dur_s: float) -> float:
    """Goodput (requests/s) = requests meeting every SLO (:func:`meets_slos`) / ``dur_s``."""
    return _per_s(sum(meets_slos(r, slos_ms) for r in records), dur_s)


def slo_attainment_by_metric(records: Sequence[RequestRecord], slos_ms: Mapping[str, float]) -> dict[str, float]:
    """Per SLO key: share of all requests (failed ones count as misses) that met that SLO alone."""
    getters = _slo_values(slos_ms)
    n = len(records)
    return {k: sum(_meets(r, slos_ms[k], g) for r in records) / n if n else 0.0 for k, g in getters.items()}


def slo_attainment(records: Sequence[RequestRecord], slos_ms: Mapping[str, float], dur_s: float) -> dict[str, Any]:
    """bench_serving's goodput block for ``records`` under ``slos_ms`` (keys ``ttft``, ``tpot``, ``e2el``, ms).

    Returns:
        ``goodput_slos_ms`` (the SLOs), ``good_requests`` (count meeting all), ``request_goodput``
        (good / ``dur_s``, req/s), ``slo_attainment`` (good / all requests sent, 0–1) and
        ``slo_attainment_by_metric`` (:func:`slo_attainment_by_metric`).
    """
    good = sum(meets_slos(r, slos_ms) for r in records)
    return {
        "goodput_slos_ms": dict(slos_ms),
        "good_requests": good,
        "request_goodput": _per_s(good, dur_s),
        "slo_attainment": good / len(records) if records else 0.0,
        "slo_attainment_by_metric": slo_attainment_by_metric(records, slos_ms),
    }
