"""The data behind every node-run figure, computed with the report's metric definitions (no matplotlib).

Each figure of :mod:`.plots` draws one of these tables, so a test (or a user) can check a plot against
the report: the largest ``output_tokens_per_s`` of :func:`output_throughput_series` is the summary's
``peak_output_throughput``; the latency values are the ones the summary's percentiles are taken over;
the last cumulative cache hit rate is the summary's ``cache_hit_rate``.

Clock: every ``t_s`` counts seconds from the run start, the first ``send_ns`` of the records (warmup
requests are not records). Server samples taken before it are the state left by the warmup and are
dropped (:func:`server_series`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import definitions as d
from ..metrics.columns import RequestColumns
from ..records import RequestRecord

__all__ = [
    "LAST_BATCH_GAUGES",
    "LATENCY_PLOT_METRICS",
    "MAX_ITL_POINTS",
    "NodePlotData",
    "PlotRecords",
    "fleet_band",
    "node_plot_data",
    "output_throughput_series",
    "run_start_s",
    "server_series",
]

PlotRecords = RequestColumns | Sequence[RequestRecord]
"""A run's records (a list, or the collector's lazily read log) or their columns."""

# Rows of records folded into columns at a time: bounds the memory of the token-time arrays.
CHUNK_ROWS = 4096
# The ITL distribution is drawn from at most this many token gaps (every k-th one beyond it).
MAX_ITL_POINTS = 2_000_000
# Gauges describing the server's last prefill/decode batch: before the run's first token on that server
# they still describe a warmup batch.
LAST_BATCH_GAUGES: tuple[str, ...] = ("sglang:cache_hit_rate", "sglang:gen_throughput")
# (column of NodePlotData.latency's ``metric``, per-request definition); ITL comes from the token gaps.
LATENCY_PLOT_METRICS: tuple[tuple[str, d.PerRequestMetric], ...] = (
    ("server_latency", d.server_latency_ms),
    ("total_latency", d.total_latency_ms),
    ("ttft", d.ttft_ms),
    ("tpot", d.tpot_ms),
)


def _chunks(data: PlotRecords) -> Iterator[RequestColumns]:
    """``data`` as columns, a block of :data:`CHUNK_ROWS` records at a time (columns: all at once)."""
    if isinstance(data, RequestColumns):
        yield data
        return
    records = iter(data)
    while chunk := list(itertools.islice(records, CHUNK_ROWS)):
        yield RequestColumns.from_records(chunk)


@dataclass
class _Origins:
    """First send (the run start) and the token-bucket origin of :func:`definitions.peak_output_throughput`:
    the earlier of the first send and the first token of a completed request."""

    first_send_ns: int | None = None
    first_timed_token_ns: int | None = None
    gaps: int = 0

    def fold(self, c: RequestColumns) -> None:
        sent = c.send_ns[c.send_ns > 0]
        timed = c.success & (c.first_chunk_tokens > 0)
        if sent.size:
            first = int(sent.min())
            self.first_send_ns = first if self.first_send_ns is None else min(self.first_send_ns, first)
        if timed.any():
            first = int(c.first_token_ns[timed].min())
            self.first_timed_token_ns = (
                first if self.first_timed_token_ns is None else min(self.first_timed_token_ns, first)
            )
        self.gaps += int(c.gap_count[c.success].sum(dtype=np.int64))

    @property
    def bucket_origin_ns(self) -> int | None:
        if self.first_timed_token_ns is None:
            return None
        if self.first_send_ns is None:
            return self.first_timed_token_ns
        return min(self.first_timed_token_ns, self.first_send_ns)

    @property
    def start_ns(self) -> int:
        """The plots' time zero: the first send (else the first token, else 0)."""
        return self.first_send_ns or self.first_timed_token_ns or 0


def _scan_origins(data: PlotRecords) -> _Origins:
    origins = _Origins()
    for c in _chunks(data):
        origins.fold(c)
    return origins


def _token_buckets(c: RequestColumns, origin_ns: int) -> np.ndarray:
    """Output tokens of completed requests per 1 s bucket from ``origin_ns`` (token times as the metric)."""
    timed = c.success & (c.first_chunk_tokens > 0)
    per_row = c.first_chunk_tokens.astype(np.int64) + c.gap_count
    times = d.token_times_ns(c)[np.repeat(timed, per_row)]
    return np.bincount((times - origin_ns) // d.NS_PER_S) if times.size else np.zeros(0, dtype=np.int64)


def _add(total: np.ndarray, part: np.ndarray) -> np.ndarray:
    if part.size > total.size:
        total = np.pad(total, (0, part.size - total.size))
    total[: part.size] += part
    return total


def _throughput_frame(counts: np.ndarray, origins: _Origins) -> pd.DataFrame:
    origin = origins.bucket_origin_ns
    if origin is None or counts.size == 0:
        return pd.DataFrame({"t_s": pd.Series(dtype=float), "output_tokens_per_s": pd.Series(dtype=float)})
    start_s = (origin - origins.start_ns) / d.NS_PER_S
    return pd.DataFrame(
        {"t_s": start_s + np.arange(counts.size, dtype=float), "output_tokens_per_s": counts.astype(float)}
    )


def output_throughput_series(data: PlotRecords) -> pd.DataFrame:
    """Output tokens/s over the run, as the report counts them.

    Every output token of a completed request at its token time (:func:`definitions.token_times_ns`),
    counted in 1-second buckets from the origin of :func:`definitions.peak_output_throughput` (the first
    send), so the largest value is the summary's ``peak_output_throughput``.

    Returns:
        Columns ``t_s`` (bucket start, s from the first send) and ``output_tokens_per_s``; empty
        without a completed request that reported tokens.
    """
    origins = _scan_origins(data)
    origin = origins.bucket_origin_ns
    counts = np.zeros(0, dtype=np.int64)
    if origin is not None:
        for c in _chunks(data):
            counts = _add(counts, _token_buckets(c, origin))
    return _throughput_frame(counts, origins)


@dataclass
class NodePlotData:
    """Every series the node figures draw (:func:`.plots.plot_node_results`); ``t_s`` in s from the first
    send.

    Attributes:
        latency: ``metric`` (``server_latency``, ``total_latency``, ``ttft``, ``tpot``, ``itl``) and
            ``value_ms`` for completed requests — the values the summary's percentiles are taken over
            (ITL: every token gap, or every k-th beyond :data:`MAX_ITL_POINTS`, see ``itl_stride``).
        requests: One row per request that was sent: ``send_t_s``, ``finish_t_s``, ``success``,
            ``ttft_ms``, ``server_latency_ms``.
        output_throughput: :func:`output_throughput_series`.
        finished: ``t_s`` (1 s bucket start), ``completed`` and ``failed`` requests finished in it.
        cache_hit_rate: ``t_s`` (a request's finish) and ``cache_hit_rate``: Σ cached / Σ prompt tokens of
            the completed requests finished by then (the summary's formula; the last row is its value).
        server: :func:`server_series` of the run's time series.
        itl_stride: 1 when ``latency`` holds every ITL, k when every k-th.
    """

    latency: pd.DataFrame
    requests: pd.DataFrame
    output_throughput: pd.DataFrame
    finished: pd.DataFrame
    cache_hit_rate: pd.DataFrame
    server: pd.DataFrame = field(default_factory=pd.DataFrame)
    itl_stride: int = 1


@dataclass
class _Accumulator:
    """What one pass over the record chunks collects."""

    origins: _Origins
    itl_stride: int
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    latency: dict[str, list[np.ndarray]] = field(default_factory=dict)
    requests: list[pd.DataFrame] = field(default_factory=list)
    cache: list[np.ndarray] = field(default_factory=list)
    gaps_seen: int = 0

    def fold(self, c: RequestColumns) -> None:
        origin = self.origins.bucket_origin_ns
        if origin is not None:
            self.tokens = _add(self.tokens, _token_buckets(c, origin))
        ok = c.success
        for name, metric in LATENCY_PLOT_METRICS:
            values = metric(c)[ok]
            self.latency.setdefault(name, []).append(values[~np.isnan(values)])
        itl = d.itl_ms(c)[np.repeat(ok, c.gap_count)]
        keep = (np.arange(itl.size) + self.gaps_seen) % self.itl_stride == 0
        self.gaps_seen += itl.size
        self.latency.setdefault("itl", []).append(itl[keep])
        start = self.origins.start_ns
        sent = c.send_ns > 0
        finish_t = np.where(c.finish_ns > 0, (c.finish_ns - start) / d.NS_PER_S, np.nan)
        frame = {
            "send_t_s": (c.send_ns[sent] - start) / d.NS_PER_S,
            "finish_t_s": finish_t[sent],
            "success": ok[sent],
            "ttft_ms": d.ttft_ms(c)[sent],
            "server_latency_ms": d.server_latency_ms(c)[sent],
        }
        self.requests.append(pd.DataFrame(frame))
        rows = ok & (c.cached_tokens >= 0) & (c.prompt_len >= 0)
        self.cache.append(np.stack([c.finish_ns[rows], c.cached_tokens[rows], c.prompt_len[rows]], axis=1))

    def latency_frame(self) -> pd.DataFrame:
        parts = [
            pd.DataFrame({"metric": name, "value_ms": np.concatenate(chunks)}) for name, chunks in self.latency.items()
        ]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["metric", "value_ms"])

    def cache_frame(self) -> pd.DataFrame:
        rows = np.concatenate(self.cache) if self.cache else np.zeros((0, 3), dtype=np.int64)
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        prompt = np.cumsum(rows[:, 2].astype(np.int64))
        cached = np.cumsum(rows[:, 1].astype(np.int64))
        have = prompt > 0
        return pd.DataFrame(
            {
                "t_s": (rows[have, 0] - self.origins.start_ns) / d.NS_PER_S,
                "cache_hit_rate": cached[have] / prompt[have],
            }
        )


def _finished(requests: pd.DataFrame) -> pd.DataFrame:
    done = requests.dropna(subset=["finish_t_s"])
    if done.empty:
        return pd.DataFrame({"t_s": pd.Series(dtype=float), "completed": [], "failed": []})
    bucket = np.floor(done["finish_t_s"].to_numpy(dtype=float)).astype(np.int64)
    lo = min(0, int(bucket.min()))
    size = int(bucket.max()) - lo + 1
    ok = done["success"].to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "t_s": np.arange(lo, lo + size, dtype=float),
            "completed": np.bincount(bucket[ok] - lo, minlength=size),
            "failed": np.bincount(bucket[~ok] - lo, minlength=size),
        }
    )


def run_start_s(requests: pd.DataFrame) -> float | None:
    """The run start (first send) in the clock of a per-request table's ``*_s`` columns
    (:meth:`MetricsCollector.to_dataframe`), which is also the clock of the time series' ``t_s``."""
    if requests.empty or "send_s" not in requests:
        return None
    sends = pd.to_numeric(requests["send_s"], errors="coerce").dropna()
    return float(sends.min()) if len(sends) else None


def _first_tokens_s(requests: pd.DataFrame, start_s: float) -> tuple[dict[str, float], float]:
    """Per worker id, and over all requests, the first token of the run (s from ``start_s``)."""
    if "first_token_s" not in requests:
        return {}, math.inf
    frame = requests.assign(_t=pd.to_numeric(requests["first_token_s"], errors="coerce") - start_s).dropna(
        subset=["_t"]
    )
    overall = float(frame["_t"].min()) if len(frame) else math.inf
    if "worker_id" not in frame:
        return {}, overall
    per_worker = frame.dropna(subset=["worker_id"]).groupby("worker_id")["_t"].min()
    return {str(k): float(v) for k, v in per_worker.items()}, overall


def server_series(timeseries: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """The sampled time series on the plots' clock, without the warmup.

    ``t_s`` is shifted to seconds from the first send (:func:`run_start_s`); samples before it (the
    state the warmup left) are dropped, as are ``scrape_error`` rows. Gauges of the last batch
    (:data:`LAST_BATCH_GAUGES`, e.g. the cache hit rate of the last prefill batch) are dropped until
    the run's first token on that server (or on any server when requests name no worker), since until
    then they still describe a warmup batch.

    Args:
        timeseries: :meth:`MetricsCollector.timeseries_dataframe` (long format).
        requests: The per-request table of the same run (its ``*_s`` share the time series' clock).
    """
    if timeseries.empty or "metric" not in timeseries:
        return pd.DataFrame(columns=list(timeseries.columns) or ["t_s", "target", "metric", "labels", "value"])
    start_s = run_start_s(requests)
    ts = timeseries[timeseries["metric"] != "scrape_error"].copy()
    if start_s is None:
        return ts.reset_index(drop=True)
    ts["t_s"] = ts["t_s"] - start_s
    ts = ts[ts["t_s"] >= 0]
    per_worker, overall = _first_tokens_s(requests, start_s)
    first_token = ts["target"].astype(str).map(per_worker).fillna(overall)
    stale = ts["metric"].isin(LAST_BATCH_GAUGES) & (ts["t_s"] < first_token)
    return ts[~stale].reset_index(drop=True)


def fleet_band(server: pd.DataFrame, metric: str, points: int = 200) -> pd.DataFrame:
    """One gauge over many servers as the mean and the min–max band across them.

    Each server's samples are held until its next sample (a gauge keeps its last value) and read on a
    common grid of ``points`` times from the first to the last sample; a grid time before a server's
    first sample does not count for that server.

    Args:
        server: :func:`server_series` (long format: ``t_s``, ``target``, ``metric``, ``value``).
        metric: The gauge, e.g. ``sglang:num_running_reqs``.

    Returns:
        Columns ``t_s``, ``mean``, ``min``, ``max`` and ``servers`` (how many had a sample by then);
        empty without samples of ``metric``.
    """
    sub = server[server["metric"] == metric].sort_values("t_s")
    if sub.empty:
        return pd.DataFrame(columns=["t_s", "mean", "min", "max", "servers"])
    grid = np.linspace(float(sub["t_s"].min()), float(sub["t_s"].max()), points)
    held = []
    for _, grp in sub.groupby("target", sort=False):
        index = np.searchsorted(grp["t_s"].to_numpy(dtype=float), grid, side="right") - 1
        values = grp["value"].to_numpy(dtype=float)[np.maximum(index, 0)]
        held.append(np.where(index >= 0, values, np.nan))
    stack = np.vstack(held)
    seen = (~np.isnan(stack)).sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(seen > 0, np.nansum(stack, axis=0) / np.maximum(seen, 1), np.nan)
    filled_low = np.where(np.isnan(stack), np.inf, stack).min(axis=0)
    filled_high = np.where(np.isnan(stack), -np.inf, stack).max(axis=0)
    return pd.DataFrame(
        {
            "t_s": grid,
            "mean": mean,
            "min": np.where(seen > 0, filled_low, np.nan),
            "max": np.where(seen > 0, filled_high, np.nan),
            "servers": seen,
        }
    )


def node_plot_data(records: PlotRecords, requests: pd.DataFrame, timeseries: pd.DataFrame) -> NodePlotData:
    """Every node figure's data for one run.

    Args:
        records: The run's records (``RunResults.records``) or their columns.
        requests: The per-request table (``RunResults.requests``), for the time series' clock.
        timeseries: The long time series (``RunResults.timeseries``), may be empty.
    """
    origins = _scan_origins(records)
    acc = _Accumulator(origins, itl_stride=max(1, math.ceil(origins.gaps / MAX_ITL_POINTS)))
    for c in _chunks(records):
        acc.fold(c)
    per_request = (
        pd.concat(acc.requests, ignore_index=True)
        if acc.requests
        else pd.DataFrame(columns=["send_t_s", "finish_t_s", "success", "ttft_ms", "server_latency_ms"])
    )
    return NodePlotData(
        latency=acc.latency_frame(),
        requests=per_request,
        output_throughput=_throughput_frame(acc.tokens, origins),
        finished=_finished(per_request),
        cache_hit_rate=acc.cache_frame(),
        server=server_series(timeseries, requests),
        itl_stride=acc.itl_stride,
    )
