"""Every metric, defined once: one small function each, with its unit and formula in the docstring.

Metrics are computed over :class:`.columns.RequestColumns` (numpy arrays, one row per request, and the
token gaps), so a run of a million requests is summarised without a Python loop per request or per
token. Each function also takes records: a run-level metric any iterable of :class:`RequestRecord`, a
per-request metric one record (it then returns a float, or None when the value is missing).

Missing values: a timestamp of ``0`` means "not recorded" (``time.monotonic_ns()`` is never 0 on a
running system; ``RequestRecord`` uses 0 as its default), a count of -1 "missing", and a value of the
wrong type or range in a record is missing (:mod:`.fields`). A span needs both timestamps and its end not
before its start; otherwise it is missing (NaN in arrays). Latency statistics use successful requests
only; failed requests are counted, not timed. docs/metrics.md lists every metric and its bench_serving
name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from ..records import RequestRecord
from .columns import GAP_BLOCK, Bools, Floats, GapBlock, Ints, RequestColumns
from .order_stats import exact_stats, median, percentile

__all__ = [
    "NS_PER_MS",
    "NS_PER_S",
    "QUEUE_WAIT_THRESHOLD_NS",
    "SLO_KEYS",
    "STAT_KEYS",
    "PerRequestMetric",
    "RunData",
    "as_columns",
    "cache_hit_rate",
    "coalesced_chunk_share",
    "coalesced_chunks",
    "completed",
    "concurrency",
    "duration_s",
    "error_counts",
    "failed",
    "input_throughput",
    "itl_ms",
    "itl_stats",
    "max_in_flight",
    "max_queue_depth",
    "meets_slos",
    "not_sent",
    "output_throughput",
    "pacing_error_ms",
    "peak_output_throughput",
    "queue_time_ms",
    "request_goodput",
    "request_throughput",
    "schedule_lag_ms",
    "server_latency_ms",
    "slo_attainment",
    "slo_attainment_by_metric",
    "stats",
    "stats_in_place",
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

RunData = RequestColumns | Iterable[RequestRecord]


def as_columns(data: RunData) -> RequestColumns:
    """``data`` itself if it is :class:`RequestColumns`, else the columns of its records."""
    return data if isinstance(data, RequestColumns) else RequestColumns.from_records(data)


class PerRequestMetric:
    """A per-request metric: called with :class:`RequestColumns` it returns one float per request (NaN
    where missing); called with one :class:`RequestRecord`, a float or None."""

    def __init__(self, fn: Callable[[RequestColumns], Floats]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)

    @overload
    def __call__(self, data: RequestRecord) -> float | None: ...

    @overload
    def __call__(self, data: RequestColumns) -> Floats: ...

    def __call__(self, data: RequestRecord | RequestColumns) -> float | Floats | None:
        if isinstance(data, RequestRecord):
            value = float(self._fn(RequestColumns.from_records([data]))[0])
            return None if math.isnan(value) else value
        return self._fn(data)


def _span_ms(start_ns: Ints, end_ns: Ints) -> Floats:
    out = np.empty(start_ns.size)
    for lo in range(0, start_ns.size, GAP_BLOCK):  # blocks: the only full-size array is the result
        start, end = start_ns[lo : lo + GAP_BLOCK], end_ns[lo : lo + GAP_BLOCK]
        span_ns = end - start  # int64: exact, whatever the clock's value
        block = out[lo : lo + GAP_BLOCK]
        np.divide(span_ns, NS_PER_MS, out=block)
        block[(start <= 0) | (span_ns < 0)] = np.nan
    return out


# ----------------------------------------------------------------------------- per request (ms)
@PerRequestMetric
def server_latency_ms(c: RequestColumns) -> Floats:
    """Server latency (ms) = ``finish_ns − send_ns``: time with the server (bench_serving ``e2e_latency``)."""
    return _span_ms(c.send_ns, c.finish_ns)


@PerRequestMetric
def total_latency_ms(c: RequestColumns) -> Floats:
    """Total latency (ms) = ``finish_ns − arrival_ns``: includes the wait for a client concurrency slot."""
    return _span_ms(c.arrival_ns, c.finish_ns)


@PerRequestMetric
def queue_time_ms(c: RequestColumns) -> Floats:
    """Client queue time (ms) = ``send_ns − arrival_ns``: the wait for a ``max_concurrency`` slot."""
    return _span_ms(c.arrival_ns, c.send_ns)


@PerRequestMetric
def schedule_lag_ms(c: RequestColumns) -> Floats:
    """Dispatcher lag (ms) = ``arrival_ns − scheduled_ns``: how late the open-loop timer fired."""
    return _span_ms(c.scheduled_ns, c.arrival_ns)


@PerRequestMetric
def pacing_error_ms(c: RequestColumns) -> Floats:
    """Pacing error (ms) = ``send_ns − scheduled_ns``: how much later than its scheduled (for a trace: its
    scaled trace) time a request was written; schedule lag plus any client queue time."""
    return _span_ms(c.scheduled_ns, c.send_ns)


@PerRequestMetric
def ttft_ms(c: RequestColumns) -> Floats:
    """Time to first token (ms) = ``first_token_ns − send_ns``.

    The first token is the first chunk carrying output tokens; without streaming the sender sets it to
    the finish time, so TTFT equals the latency (as in bench_serving).
    """
    return _span_ms(c.send_ns, c.first_token_ns)


@PerRequestMetric
def tpot_ms(c: RequestColumns) -> Floats:
    """Time per output token after the first (ms) = ``(server_latency − ttft) / (output_tokens − 1)``
    = ``(finish_ns − first_token_ns) / (output_tokens − 1)``; missing unless more than one token was
    generated, both spans are known and some token arrived after the first chunk. Without streaming
    (every token arrives with the body, at the finish time) or when the first chunk carried every token,
    the time per token after the first was not observed: missing, never 0."""
    out = np.empty(len(c))
    for lo in range(0, len(c), GAP_BLOCK):  # blocks: the only full-size array is the result
        rows = slice(lo, lo + GAP_BLOCK)
        send, first, finish = c.send_ns[rows], c.first_token_ns[rows], c.finish_ns[rows]
        after_first = c.output_tokens[rows] - 1
        block = out[rows]
        np.divide(finish - first, NS_PER_MS, out=block)
        block /= np.maximum(after_first, 1)
        unobserved = c.gap_count[rows] == 0
        block[(after_first < 1) | (send <= 0) | (finish < send) | (first < send) | unobserved] = np.nan
    return out


def _later_token_times(c: RequestColumns, block: GapBlock) -> Ints:
    """Times (ns) of the tokens after the first chunk of the block's rows, row by row."""
    if block.gap_stop == block.gap_start:
        return np.zeros(0, dtype=np.int64)
    elapsed = np.cumsum(c.gaps.exact(block.gap_start, block.gap_stop))
    first = block.offsets[:-1] - block.gap_start
    before = np.where(first > 0, elapsed[np.maximum(first - 1, 0)], 0)
    rows = slice(block.start, block.stop)
    return np.repeat(c.first_token_ns[rows] - before, c.gap_count[rows]) + elapsed


@overload
def itl_ms(data: RequestRecord) -> list[float]: ...


@overload
def itl_ms(data: RequestColumns) -> Floats: ...


def itl_ms(data: RequestRecord | RequestColumns) -> list[float] | Floats:
    """Inter-token latencies (ms): the differences between consecutive token times after the first
    chunk (:func:`token_times_ns`), i.e. the token gaps of :func:`.fields.token_gaps_ns`. A chunk
    carrying k tokens after a gap g gives k values within 1 ns of g / k (bench_serving's rule for
    SGLang streams, where one event can carry several tokens); chunks without tokens are skipped, so the
    gap runs from the previous chunk that carried tokens. One record: its list; columns: every row's,
    in row order."""
    c = RequestColumns.from_records([data]) if isinstance(data, RequestRecord) else data
    values = c.gaps.exact(0, c.gaps.values.size) / NS_PER_MS
    return values.tolist() if isinstance(data, RequestRecord) else values


def token_times_ns(data: RequestRecord | RequestColumns) -> Ints:
    """Reconstructed time (ns) of every output token: the first token-carrying chunk's tokens at its time;
    each later chunk's k tokens spread evenly over the gap g since the previous token-carrying chunk,
    token s at ``previous + (g·s) // k`` (the last at the chunk's own time). Row by row for columns."""
    c = RequestColumns.from_records([data]) if isinstance(data, RequestRecord) else data
    rows = np.arange(len(c))
    row_of = np.concatenate([np.repeat(rows, c.first_chunk_tokens), np.repeat(rows, c.gap_count)])
    later = [_later_token_times(c, block) for block in c.gap_blocks()]
    times = np.concatenate([np.repeat(c.first_token_ns, c.first_chunk_tokens), *later])
    return times[np.argsort(row_of, kind="stable")]


# ----------------------------------------------------------------------------- run level: counts
def completed(data: RunData) -> int:
    """Number of successful requests (``success`` is True)."""
    return int(as_columns(data).success.sum())


def failed(data: RunData) -> int:
    """Number of failed requests (HTTP/stream errors, timeouts, cancelled)."""
    c = as_columns(data)
    return len(c) - int(c.success.sum())


def not_sent(data: RunData) -> int:
    """Requests a virtual user never sent because it left (``error_type='not_sent'``, docs/workloads.md):
    not in ``total_requests``, ``failed`` or any other metric."""
    return as_columns(data).not_sent


def success_rate(data: RunData) -> float:
    """Share of requests that succeeded = completed / all records (0.0 for no records)."""
    c = as_columns(data)
    return int(c.success.sum()) / len(c) if len(c) else 0.0


def error_counts(data: RunData) -> dict[str, int]:
    """Failed requests by ``error_type`` (``unknown`` when unset), most frequent first (ties: first seen)."""
    c = as_columns(data)
    codes = c.error_code[~c.success].astype(np.int64) + 1  # 0: no error type
    if codes.size == 0:
        return {}
    names = ("unknown", *c.error_types)
    present, first_seen, counts = np.unique(codes, return_index=True, return_counts=True)
    merged: dict[str, tuple[int, int]] = {}
    for code, first, count in zip(present.tolist(), first_seen.tolist(), counts.tolist(), strict=True):
        name = names[code]
        known_count, known_first = merged.get(name, (0, first))
        merged[name] = (known_count + count, min(known_first, first))
    return {name: n for name, (n, _) in sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[1][1]))}


def total_input_tokens(data: RunData) -> int:
    """Σ ``prompt_len`` (tokens) over completed requests (bench_serving ``total_input_tokens``)."""
    c = as_columns(data)
    return int(c.prompt_len.sum(where=c.success & (c.prompt_len >= 0), dtype=np.int64))


def total_output_tokens(data: RunData) -> int:
    """Σ ``output_tokens`` over completed requests (bench_serving ``total_output_tokens``)."""
    c = as_columns(data)
    return int(c.output_tokens.sum(where=c.success & (c.output_tokens >= 0), dtype=np.int64))


# ----------------------------------------------------------------------------- run level: rates
def duration_s(data: RunData) -> float:
    """Run duration (s) = last ``finish_ns`` − first ``send_ns``, over every request that was sent
    (failed ones included, never-sent ones excluded); 0.0 when nothing was sent and finished."""
    c = as_columns(data)
    sent = c.send_ns > 0
    ended = sent & (c.finish_ns > 0)
    if not ended.any():
        return 0.0
    first_send = int(c.send_ns.min(where=sent, initial=np.iinfo(np.int64).max))
    return max(0.0, (int(c.finish_ns.max(where=ended, initial=0)) - first_send) / NS_PER_S)


def _per_s(amount: float, dur_s: float) -> float:
    return amount / dur_s if dur_s > 0 else 0.0


def request_throughput(data: RunData, dur_s: float) -> float:
    """Requests/s = completed / ``dur_s`` (0.0 for a zero duration)."""
    return _per_s(completed(data), dur_s)


def input_throughput(data: RunData, dur_s: float) -> float:
    """Input tokens/s = Σ ``prompt_len`` of completed requests / ``dur_s``."""
    return _per_s(total_input_tokens(data), dur_s)


def output_throughput(data: RunData, dur_s: float) -> float:
    """Output tokens/s = Σ ``output_tokens`` of completed requests / ``dur_s``."""
    return _per_s(total_output_tokens(data), dur_s)


def total_throughput(data: RunData, dur_s: float) -> float:
    """Tokens/s = (Σ prompt + Σ output tokens of completed requests) / ``dur_s``."""
    c = as_columns(data)
    return _per_s(total_input_tokens(c) + total_output_tokens(c), dur_s)


def concurrency(data: RunData, dur_s: float) -> float:
    """Average requests in flight = Σ server latency (s) of completed requests / ``dur_s`` (Little's
    law; bench_serving's ``concurrency``)."""
    c = as_columns(data)
    return _per_s(float(np.nansum(server_latency_ms(c), where=c.success)) / 1e3, dur_s)


def _max_overlap(start_ns: Ints, end_ns: Ints) -> int:
    """Most intervals open at once; an interval ending when another starts does not overlap it.
    Sorts both arrays in place (pass copies).

    Just after the i-th start (sorted), i + 1 intervals have started and those whose end ≤ that start
    have ended, so the count is ``i + 1 − #(end ≤ startᵢ)``; its maximum is the answer (sweep line)."""
    start_ns.sort()
    end_ns.sort()
    best = 0
    for lo in range(0, start_ns.size, GAP_BLOCK):  # blocks bound the temporaries
        starts = start_ns[lo : lo + GAP_BLOCK]
        ended = np.searchsorted(end_ns, starts, side="right")
        best = max(best, int((np.arange(lo + 1, lo + 1 + starts.size) - ended).max()))
    return best


def max_in_flight(data: RunData) -> int:
    """Most requests at once between ``send_ns`` and ``finish_ns`` (exact sweep line; failures included)."""
    c = as_columns(data)
    valid = (c.send_ns > 0) & (c.finish_ns >= c.send_ns)
    return _max_overlap(c.send_ns[valid], c.finish_ns[valid])


def max_queue_depth(data: RunData, min_wait_ns: int = QUEUE_WAIT_THRESHOLD_NS) -> int:
    """Client queue depth: most requests at once that had arrived but were not yet sent (sweep line
    over ``[arrival_ns, send_ns]``). Waits shorter than ``min_wait_ns`` (default 1 ms) are the sender
    encoding the request, not queueing, and are ignored."""
    c = as_columns(data)
    queued = np.zeros(len(c), dtype=np.bool_)
    for lo in range(0, len(c), GAP_BLOCK):  # blocks: no full-size int64 temporary for the waits
        arrival, send = c.arrival_ns[lo : lo + GAP_BLOCK], c.send_ns[lo : lo + GAP_BLOCK]
        queued[lo : lo + GAP_BLOCK] = (arrival > 0) & (send > 0) & (send - arrival >= min_wait_ns)
    return _max_overlap(c.arrival_ns[queued], c.send_ns[queued])


def peak_output_throughput(data: RunData) -> float:
    """Peak output tokens/s: most tokens of completed requests (:func:`token_times_ns`) in one 1-second
    bucket, buckets counted from the first send (bench_serving ``max_output_tokens_per_s``)."""
    c = as_columns(data)
    timed = c.success & (c.first_chunk_tokens > 0)
    if not timed.any():
        return 0.0
    never = np.iinfo(np.int64).max
    origin = min(
        int(c.first_token_ns.min(where=timed, initial=never)), int(c.send_ns.min(where=c.send_ns > 0, initial=never))
    )
    counts = np.zeros(1, dtype=np.int64)
    for block in c.gap_blocks():
        rows = slice(block.start, block.stop)
        ok = timed[rows]
        first = np.bincount((c.first_token_ns[rows][ok] - origin) // NS_PER_S, c.first_chunk_tokens[rows][ok])
        later_ns = _later_token_times(c, block)[np.repeat(ok, c.gap_count[rows])]
        later = np.bincount((later_ns - origin) // NS_PER_S)
        for per_s in (first.astype(np.int64), later):
            if per_s.size > counts.size:
                counts = np.pad(counts, (0, per_s.size - counts.size))
            counts[: per_s.size] += per_s
    return float(counts.max())


def cache_hit_rate(data: RunData) -> float | None:
    """Prefix-cache hit rate = Σ ``cached_tokens`` / Σ ``prompt_len`` over completed requests that report
    ``cached_tokens``; ``None`` when none reports it (or their prompts sum to 0)."""
    c = as_columns(data)
    rows = c.success & (c.cached_tokens >= 0) & (c.prompt_len >= 0)
    prompt = int(c.prompt_len[rows].sum(dtype=np.int64))
    return int(c.cached_tokens[rows].sum(dtype=np.int64)) / prompt if prompt else None


def _streamed(c: RequestColumns) -> Bools:
    """Completed requests with two or more token chunks (the ones that have ITL gaps) whose coalesced
    count is known."""
    return c.success & (c.token_chunks > 1) & (c.coalesced_chunks >= 0)


def coalesced_chunks(data: RunData) -> int:
    """Σ ``coalesced_chunks`` over completed requests with two or more token chunks: chunks that arrived
    in one socket read together with another (several SSE events in one read share its timestamp, so
    the ITL gaps between them are 0)."""
    c = as_columns(data)
    return int(c.coalesced_chunks.sum(where=_streamed(c), dtype=np.int64))


def coalesced_chunk_share(data: RunData) -> float | None:
    """Share of token chunks that arrived in a socket read with others = Σ ``coalesced_chunks`` /
    Σ token chunks over completed requests with two or more token chunks; ``None`` when there are none
    (e.g. without streaming)."""
    c = as_columns(data)
    rows = _streamed(c)
    chunks = int(c.token_chunks.sum(where=rows, dtype=np.int64))
    return int(c.coalesced_chunks.sum(where=rows, dtype=np.int64)) / chunks if chunks else None


def stats(values: Sequence[float] | Floats) -> dict[str, float | None]:
    """mean, median, std (population, as numpy/bench_serving), p90, p95, p99 (linear interpolation,
    numpy's default), min, max of ``values``, keyed by :data:`STAT_KEYS`; every value ``None`` for no
    values."""
    return stats_in_place(np.array(values, dtype=np.float64))


def stats_in_place(values: Floats) -> dict[str, float | None]:
    """:func:`stats` of the non-NaN entries of ``values``, sorting ``values`` in place (no copy: the
    summary's per-request arrays are a million floats each)."""
    values.sort()  # NaN sorts last
    n = int(values.size - np.count_nonzero(np.isnan(values)))
    if n == 0:
        return dict.fromkeys(STAT_KEYS)
    ordered = values[:n]
    mean = float(ordered.mean())
    squares = sum(float(np.square(ordered[i : i + GAP_BLOCK] - mean).sum()) for i in range(0, n, GAP_BLOCK))

    def value_at(i: int) -> float:
        return float(ordered[i])

    return {
        "mean": mean,
        "median": median(value_at, n),
        "std": math.sqrt(squares / n),
        "p90": percentile(value_at, n, 90),
        "p95": percentile(value_at, n, 95),
        "p99": percentile(value_at, n, 99),
        "min": value_at(0),
        "max": value_at(n - 1),
    }


def itl_stats(data: RunData) -> dict[str, float | None]:
    """:func:`stats` of the ITLs (:func:`itl_ms`) of completed requests, computed exactly over the stored
    integer-ns gaps in place (:func:`.order_stats.exact_stats`) instead of a float array of every token."""
    c = as_columns(data)

    def blocks() -> Iterator[npt.NDArray[np.uint32]]:
        for block in c.gap_blocks():
            values = c.gaps.values[block.gap_start : block.gap_stop]
            ok = c.success[block.start : block.stop]
            yield values if ok.all() else values[np.repeat(ok, c.gap_count[block.start : block.stop])]

    return exact_stats(blocks, c.gaps.overflow_ns[c.success[c.gaps.overflow_row]], NS_PER_MS)


# ----------------------------------------------------------------------------- goodput / SLOs
def _slo_values(c: RequestColumns, slos_ms: Mapping[str, float]) -> dict[str, Floats]:
    unknown = sorted(set(slos_ms) - set(SLO_KEYS))
    if unknown:
        raise ValueError(f"unknown SLO keys {unknown}; use {', '.join(SLO_KEYS)} (milliseconds)")
    getters: dict[str, Callable[[RequestColumns], Floats]] = {
        "ttft": ttft_ms,
        "tpot": lambda cols: np.nan_to_num(tpot_ms(cols), nan=0.0),  # one token counts as TPOT 0 (bench_serving)
        "e2el": server_latency_ms,
    }
    return {key: getters[key](c) for key in slos_ms}


def _meets_each(c: RequestColumns, slos_ms: Mapping[str, float]) -> dict[str, Bools]:
    return {k: c.success & (values <= slos_ms[k]) for k, values in _slo_values(c, slos_ms).items()}


def _meets_all(c: RequestColumns, slos_ms: Mapping[str, float]) -> Bools:
    return functools.reduce(np.logical_and, _meets_each(c, slos_ms).values(), c.success.copy())


@overload
def meets_slos(data: RequestRecord, slos_ms: Mapping[str, float]) -> bool: ...


@overload
def meets_slos(data: RequestColumns, slos_ms: Mapping[str, float]) -> Bools: ...


def meets_slos(data: RequestRecord | RequestColumns, slos_ms: Mapping[str, float]) -> bool | Bools:
    """True if the request succeeded and met every SLO: ``ttft`` ≤, ``tpot`` ≤ (0 for one token), ``e2el``
    (server latency) ≤ the limit in ms (missing values miss). One record: a bool; columns: one per row.
    Unknown SLO keys raise ``ValueError``."""
    if isinstance(data, RequestRecord):
        return bool(_meets_all(RequestColumns.from_records([data]), slos_ms)[0])
    return _meets_all(data, slos_ms)


def request_goodput(data: RunData, slos_ms: Mapping[str, float], dur_s: float) -> float:
    """Goodput (requests/s) = requests meeting every SLO (:func:`meets_slos`) / ``dur_s``."""
    return _per_s(int(_meets_all(as_columns(data), slos_ms).sum()), dur_s)


def slo_attainment_by_metric(data: RunData, slos_ms: Mapping[str, float]) -> dict[str, float]:
    """Per SLO key: share of all requests (failed ones count as misses) that met that SLO alone."""
    c = as_columns(data)
    n = len(c)
    return {k: int(ok.sum()) / n if n else 0.0 for k, ok in _meets_each(c, slos_ms).items()}


def slo_attainment(data: RunData, slos_ms: Mapping[str, float], dur_s: float) -> dict[str, Any]:
    """bench_serving's goodput block for the run under ``slos_ms`` (keys ``ttft``, ``tpot``, ``e2el``, ms).

    Returns:
        ``goodput_slos_ms`` (the SLOs), ``good_requests`` (count meeting all), ``request_goodput``
        (good / ``dur_s``, req/s), ``slo_attainment`` (good / all requests sent, 0–1) and
        ``slo_attainment_by_metric`` (:func:`slo_attainment_by_metric`).
    """
    c = as_columns(data)
    good = int(_meets_all(c, slos_ms).sum())
    return {
        "goodput_slos_ms": dict(slos_ms),
        "good_requests": good,
        "request_goodput": _per_s(good, dur_s),
        "slo_attainment": good / len(c) if len(c) else 0.0,
        "slo_attainment_by_metric": slo_attainment_by_metric(c, slos_ms),
    }
