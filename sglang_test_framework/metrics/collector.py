"""MetricsCollector: keeps every request record (streaming each to JSONL as it arrives), summarises
the run, exports it, and samples server time series during the run on the records' clock."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pandas as pd

from ..records import RequestRecord
from . import definitions as d
from .prometheus import ScrapeTarget
from .sampler import ClientSampler, ScrapeFailure, TimeSeriesSampler
from .summary import LATENCY_METRICS, REQUEST_COLUMNS, bench_serving_view, request_rows, summarize

__all__ = ["EXPORT_FORMATS", "LATENCY_METRICS", "TIMESERIES_COLUMNS", "MetricsCollector"]

EXPORT_FORMATS: tuple[str, ...] = ("json", "csv", "parquet")
TIMESERIES_COLUMNS: tuple[str, ...] = ("t_s", "target", "metric", "labels", "value")
SCRAPE_ERROR_METRIC = "scrape_error"


def _json_safe(value: Any) -> Any:
    """NaN/inf → None, recursively, so the JSON output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


class MetricsCollector:
    """Collects request records and server samples; every number comes from :mod:`.definitions`.

    Args:
        records_path: If given, each added record is appended to this JSONL file at once (one flushed
            line per record, so a crash or Ctrl-C loses nothing already measured). The file is
            truncated when the collector is created.
        run_start_ns: ``time.monotonic_ns()`` of the run start, the origin of the ``*_s`` / ``t_s``
            columns. Defaults to the earliest scheduled/arrival/send time or time-series sample.
    """

    def __init__(self, records_path: Path | None = None, run_start_ns: int | None = None) -> None:
        self._records: list[RequestRecord] = []
        self.records_path = records_path
        self.run_start_ns_override = run_start_ns
        self._sampler = TimeSeriesSampler()
        self._fh: IO[str] | None = None
        if records_path is not None:
            records_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = records_path.open("w", encoding="utf-8")

    # ----------------------------------------------------------------------- records
    @property
    def records(self) -> list[RequestRecord]:
        """Every record added so far, in the order added."""
        return self._records

    def add_record(self, record: RequestRecord) -> None:
        """Keep ``record`` and, with a ``records_path``, append it to the JSONL file and flush."""
        self._records.append(record)
        if self.records_path is not None:
            if self._fh is None:  # added after close(): keep appending
                self._fh = self.records_path.open("a", encoding="utf-8")
            self._fh.write(json.dumps(record.to_dict()) + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the JSONL file (records added later reopen it in append mode)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> MetricsCollector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def run_start_ns(self) -> int:
        """Origin of relative times: the ``run_start_ns`` given, else the earliest nonzero scheduled,
        arrival or send time of any record or the first time-series sample (0 with no data)."""
        if self.run_start_ns_override is not None:
            return self.run_start_ns_override
        starts = [t for r in self._records for t in (r.scheduled_ns, r.arrival_ns, r.send_ns) if t]
        if self._sampler.samples:
            starts.append(min(s.t_ns for s in self._sampler.samples))
        return min(starts) if starts else 0

    # ----------------------------------------------------------------------- summaries
    def get_metrics(self) -> dict[str, Any]:
        """The flat summary (:func:`.summary.summarize`) plus ``scrape_errors`` (failed samples).

        Key names: ``request_throughput, input_throughput, output_throughput, total_throughput,
        success_rate, completed, failed, total_requests, duration_s, total_input_tokens,
        total_output_tokens, concurrency, max_in_flight, max_queue_depth, peak_output_throughput,
        cache_hit_rate, errors_by_type, first_errors, scrape_errors`` and
        ``{mean,median,std,p90,p95,p99,min,max}_{server_latency,total_latency,queue_time,ttft,itl,tpot,
        schedule_lag}`` (ms).
        """
        out = summarize(self._records)
        out["scrape_errors"] = len(self._sampler.failures)
        return out

    def goodput(self, slos_ms: Mapping[str, float]) -> dict[str, Any]:
        """bench_serving's goodput block for this run (:func:`.definitions.slo_attainment`)."""
        return d.slo_attainment(self._records, slos_ms, d.duration_s(self._records))

    def bench_serving_summary(
        self, extra: Mapping[str, Any] | None = None, slos_ms: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        """The summary under SGLang bench_serving's JSONL key names (:func:`.summary.bench_serving_view`).

        Args:
            extra: Run settings (``tag``, ``backend``, ``dataset_name``, ``request_rate``,
                ``max_concurrency``, …); other keys are copied unless they clash with a measured key.
            slos_ms: SLOs (``ttft``, ``tpot``, ``e2el`` in ms) to add bench_serving's goodput keys.
        """
        goodput = self.goodput(slos_ms) if slos_ms else None
        return bench_serving_view(summarize(self._records), extra, goodput)

    # ----------------------------------------------------------------------- tables and files
    def to_dataframe(self) -> pd.DataFrame:
        """One row per request (columns :data:`.summary.REQUEST_COLUMNS`): ``*_s`` timestamps in
        seconds from :attr:`run_start_ns`, ``*_ms`` per-request metrics, token counts, ids, errors."""
        return pd.DataFrame(request_rows(self._records, self.run_start_ns), columns=list(REQUEST_COLUMNS))

    def export_metrics(self, format: str, path: str | Path) -> Path:
        """Write the run to ``path`` and return it.

        Args:
            format: ``json`` (the summary as one JSON line, strict JSON), ``csv`` or ``parquet``
                (the per-request table of :meth:`to_dataframe`).
            path: Output file; parent directories are created.

        Raises:
            ValueError: ``format`` is not one of :data:`EXPORT_FORMATS`.
        """
        if format not in EXPORT_FORMATS:
            raise ValueError(f"export format {format!r} is not supported; use one of {', '.join(EXPORT_FORMATS)}")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "json":
            out.write_text(json.dumps(_json_safe(self.get_metrics()), allow_nan=False) + "\n", encoding="utf-8")
        elif format == "csv":
            self.to_dataframe().to_csv(out, index=False)
        else:
            self.to_dataframe().to_parquet(out, index=False)
        return out

    # ----------------------------------------------------------------------- time series
    @property
    def scrape_errors(self) -> list[ScrapeFailure]:
        """Samples that failed (unreachable endpoint, HTTP error, unparsable page, broken sampler)."""
        return self._sampler.failures

    async def start_collection(
        self,
        targets: Sequence[ScrapeTarget],
        interval_s: float = 1.0,
        client_sampler: ClientSampler | None = None,
    ) -> None:
        """Sample ``targets`` every ``interval_s`` seconds in the background on the running loop.

        Args:
            targets: Prometheus endpoints (and optional pids for ``process_rss_bytes``).
            interval_s: Sampling period.
            client_sampler: Called at each tick; its values (e.g. ``client_in_flight``,
                ``client_completed``, ``client_errors``) are stored under target ``client``.

        Raises:
            RuntimeError: collection is already running.
        """
        await self._sampler.start(targets, interval_s, client_sampler)

    async def stop_collection(self) -> None:
        """Take one last sample and stop sampling (a no-op when not running)."""
        await self._sampler.stop()

    def timeseries_dataframe(self) -> pd.DataFrame:
        """Long format (:data:`TIMESERIES_COLUMNS`): ``t_s`` seconds from :attr:`run_start_ns` (same clock
        as the records), ``target``, ``metric``, ``labels`` (``k=v,…``), ``value``. Each failed sample
        is a row with metric ``scrape_error``, value 1 and ``labels`` ``error=<message>``."""
        t0 = self.run_start_ns
        rows = [(s.t_ns, s.target, s.metric, s.labels, s.value) for s in self._sampler.samples]
        rows += [(f.t_ns, f.target, SCRAPE_ERROR_METRIC, f"error={f.error}", 1.0) for f in self._sampler.failures]
        rows.sort(key=lambda row: row[0])
        return pd.DataFrame(
            [((t_ns - t0) / d.NS_PER_S, *rest) for t_ns, *rest in rows],
            columns=list(TIMESERIES_COLUMNS),
        )
