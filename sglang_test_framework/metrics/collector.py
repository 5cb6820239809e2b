"""MetricsCollector: keeps every request record (and streams it to JSONL), computes the summary,
exports it, and scrapes server time series during a run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import pandas as pd

from ..records import RequestRecord
from . import definitions as d
from .prometheus import Sample, ScrapeTarget, scrape

__all__ = ["LATENCY_METRICS", "MetricsCollector"]

LATENCY_METRICS: dict[str, Callable[[RequestRecord], float | None]] = {
    "server_latency": d.server_latency_ms,
    "total_latency": d.total_latency_ms,
    "queue_time": d.queue_time_ms,
    "ttft": d.ttft_ms,
    "tpot": d.tpot_ms,
    "schedule_lag": d.schedule_lag_ms,
}
ClientSampler = Callable[[], dict[str, float]]


class MetricsCollector:
    """Collects records and server samples; every metric comes from :mod:`.definitions`."""

    def __init__(self, records_path: Path | None = None) -> None:
        self._records: list[RequestRecord] = []
        self._samples: list[Sample] = []
        self.scrape_errors: list[dict[str, Any]] = []
        self.records_path = records_path
        self._fh: IO[str] | None = None
        if records_path is not None:
            records_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = records_path.open("w", buffering=1)  # line-buffered: one flushed line per record
        self._task: asyncio.Task[None] | None = None

    @property
    def records(self) -> list[RequestRecord]:
        """Every record added so far."""
        return self._records

    def add_record(self, record: RequestRecord) -> None:
        """Keep ``record`` and append it to the JSONL file at once."""
        self._records.append(record)
        if self._fh is not None:
            self._fh.write(json.dumps(record.to_dict()) + "\n")

    def close(self) -> None:
        """Close the JSONL file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ----------------------------------------------------------------------- summary
    def get_metrics(self) -> dict[str, Any]:
        """The flat summary (keys documented in docs/metrics.md)."""
        recs = self._records
        ok = d.completed(recs)
        dur = d.duration_s(recs)
        out: dict[str, Any] = {
            "completed": len(ok),
            "failed": len(recs) - len(ok),
            "total_requests": len(recs),
            "success_rate": len(ok) / len(recs) if recs else 0.0,
            "duration_s": dur,
            "total_input_tokens": sum(r.prompt_len for r in ok),
            "total_output_tokens": sum(r.output_tokens for r in ok),
        }
        out["request_throughput"] = len(ok) / dur if dur else 0.0
        out["input_throughput"] = out["total_input_tokens"] / dur if dur else 0.0
        out["output_throughput"] = out["total_output_tokens"] / dur if dur else 0.0
        out["total_throughput"] = out["input_throughput"] + out["output_throughput"]
        out["concurrency"] = d.concurrency(recs, dur)
        out["max_in_flight"] = d.max_in_flight(recs)
        out["max_queue_depth"] = d.max_queue_depth(recs)
        out["peak_output_throughput"] = d.peak_output_throughput(recs)
        out["cache_hit_rate"] = d.cache_hit_rate(recs)
        for name, fn in LATENCY_METRICS.items():
            values = [v for r in ok if (v := fn(r)) is not None]
            for key, value in d.stats(values).items():
                out[f"{key}_{name}"] = value
        itls = [x for r in ok for x in d.itl_ms(r)]
        for key, value in d.stats(itls).items():
            out[f"{key}_itl"] = value
        errors: dict[str, int] = {}
        for r in recs:
            if not r.success:
                errors[r.error_type or "unknown"] = errors.get(r.error_type or "unknown", 0) + 1
        out["errors_by_type"] = errors
        out["first_errors"] = [f"{r.request_id}: {r.error}" for r in recs if not r.success][:5]
        return out

    def bench_serving_summary(self, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """The summary under SGLang bench_serving's JSONL key names."""
        m = self.get_metrics()
        ctx = context or {}
        out: dict[str, Any] = {
            "tag": ctx.get("tag"),
            "backend": ctx.get("backend"),
            "dataset_name": ctx.get("dataset_name"),
            "request_rate": ctx.get("request_rate"),
            "max_concurrency": ctx.get("max_concurrency"),
            "duration": m["duration_s"],
            "completed": m["completed"],
            "total_input_tokens": m["total_input_tokens"],
            "total_output_tokens": m["total_output_tokens"],
            "total_output_tokens_retokenized": m["total_output_tokens"],
        }
        for key in ("request_throughput", "input_throughput", "output_throughput", "total_throughput", "concurrency"):
            out[key] = m[key]
        for ours, theirs in (("server_latency", "e2e_latency"), ("ttft", "ttft"), ("tpot", "tpot"), ("itl", "itl")):
            for stat in ("mean", "median", "std", "p90", "p95", "p99"):
                out[f"{stat}_{theirs}_ms"] = m[f"{stat}_{ours}"]
        out["max_itl_ms"] = m["max_itl"]
        out["max_output_tokens_per_s"] = m["peak_output_throughput"]
        out["max_concurrent_requests"] = m["max_in_flight"]
        return out

    # ----------------------------------------------------------------------- tables
    def _t0_ns(self) -> int:
        starts = [r.arrival_ns for r in self._records if r.arrival_ns]
        if self._samples:
            starts.append(self._samples[0].t_ns)
        return min(starts) if starts else 0

    def to_dataframe(self) -> pd.DataFrame:
        """One row per request; times in seconds from the run start, latencies in ms."""
        t0 = self._t0_ns()
        rows = []
        for r in self._records:
            rows.append(
                {
                    "request_id": r.request_id,
                    "worker_id": r.worker_id,
                    "success": r.success,
                    "error_type": r.error_type,
                    "error": r.error,
                    "http_status": r.http_status,
                    "arrival_s": (r.arrival_ns - t0) / 1e9 if r.arrival_ns else None,
                    "send_s": (r.send_ns - t0) / 1e9 if r.send_ns else None,
                    "finish_s": (r.finish_ns - t0) / 1e9 if r.finish_ns else None,
                    "prompt_len": r.prompt_len,
                    "output_tokens": r.output_tokens,
                    "expected_output_len": r.expected_output_len,
                    "cached_tokens": r.cached_tokens,
                    "ttft_ms": d.ttft_ms(r),
                    "tpot_ms": d.tpot_ms(r),
                    "server_latency_ms": d.server_latency_ms(r),
                    "total_latency_ms": d.total_latency_ms(r),
                    "queue_time_ms": d.queue_time_ms(r),
                    "schedule_lag_ms": d.schedule_lag_ms(r),
                    "mean_itl_ms": (sum(i := d.itl_ms(r)) / len(i)) if r.chunk_ns[1:] else None,
                    "num_chunks": len(r.chunk_ns),
                    "finish_reason": r.finish_reason,
                    "group_id": r.group_id,
                    "turn": r.turn,
                    "num_retractions": r.num_retractions,
                    "server_queue_time_ms": r.server_queue_time_s * 1e3 if r.server_queue_time_s is not None else None,
                }
            )
        return pd.DataFrame(rows)

    def export_metrics(self, format: str, path: str | Path) -> Path:
        """``json`` (the summary), ``csv`` or ``parquet`` (one row per request)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "json":
            out.write_text(json.dumps(self.get_metrics(), default=str) + "\n")
        elif format == "csv":
            self.to_dataframe().to_csv(out, index=False)
        elif format == "parquet":
            self.to_dataframe().to_parquet(out, index=False)
        else:
            raise ValueError(f"export format {format!r}: use 'json', 'csv' or 'parquet'")
        return out

    # ----------------------------------------------------------------------- time series
    async def start_collection(
        self, targets: Sequence[ScrapeTarget], interval_s: float = 1.0, client_sampler: ClientSampler | None = None
    ) -> None:
        """Scrape ``targets`` every ``interval_s`` seconds in the background (errors are recorded)."""
        if self._task is not None:
            raise RuntimeError("collection already running; call stop_collection() first")
        self._task = asyncio.create_task(self._collect(list(targets), interval_s, client_sampler))

    async def stop_collection(self) -> None:
        """Stop scraping (one last scrape is taken first)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _collect(
        self, targets: list[ScrapeTarget], interval_s: float, client_sampler: ClientSampler | None
    ) -> None:
        async with aiohttp.ClientSession() as session:
            next_t = time.monotonic()
            while True:
                results = await asyncio.gather(*(scrape(session, t) for t in targets))
                for target, (samples, error) in zip(targets, results, strict=True):
                    self._samples.extend(samples)
                    if error is not None:
                        self.scrape_errors.append({"t_ns": time.monotonic_ns(), "target": target.name, "error": error})
                if client_sampler is not None:
                    now = time.monotonic_ns()
                    self._samples.extend(Sample(now, "client", k, "", float(v)) for k, v in client_sampler().items())
                next_t += interval_s
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    def timeseries_dataframe(self) -> pd.DataFrame:
        """Long format: ``t_s`` (from the run start, same clock as the records), target, metric, labels, value."""
        if not self._samples:
            return pd.DataFrame(columns=["t_s", "target", "metric", "labels", "value"])
        t0 = self._t0_ns()
        return pd.DataFrame(
            [
                {
                    "t_s": (s.t_ns - t0) / 1e9,
                    "target": s.target,
                    "metric": s.metric,
                    "labels": s.labels,
                    "value": s.value,
                }
                for s in self._samples
            ]
        )
