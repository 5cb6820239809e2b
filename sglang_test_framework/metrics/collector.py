"""MetricsCollector: streams every request record to JSONL as it arrives and keeps only compact
columns of what the summary needs; summarises the run (vectorised), exports it, and samples server time
series during the run on the records' clock."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..records import ClientProcessStats, RequestRecord
from . import definitions as d
from .columns import ColumnStore, RequestColumns
from .prometheus import ScrapeTarget
from .record_log import RecordLog
from .sampler import ClientSampler, ScrapeFailure, TimeSeriesSampler
from .summary import bench_serving_view, summarize
from .table import request_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_FORMATS", "TIMESERIES_COLUMNS", "MetricsCollector"]

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

    Each added record is appended to a JSONL file (one line per record, written within 100 ms in batches
    and at close: Ctrl-C loses nothing already measured, a hard crash at most the last 100 ms;
    :mod:`.record_log`) and folded into compact columns (:mod:`.columns`: 63 bytes
    per request and 4 per output token); no record object is kept. :attr:`records` reads them back from
    the file. The summary can be taken at any time, also of a run still going or interrupted.

    Args:
        records_path: The JSONL file (truncated when the collector is created). Without one, records go
            to a private temporary file deleted with the collector.
        run_start_ns: ``time.monotonic_ns()`` of the run start, the origin of the ``*_s`` / ``t_s``
            columns. Defaults to the earliest scheduled/arrival/send time or time-series sample.
    """

    def __init__(self, records_path: Path | None = None, run_start_ns: int | None = None) -> None:
        self._setup(RecordLog(records_path), records_path, run_start_ns)

    def _setup(self, log: RecordLog, records_path: Path | None, run_start_ns: int | None) -> None:
        self.records_path = records_path
        self.run_start_ns_override = run_start_ns
        self._log = log
        self._store = ColumnStore()
        self._sampler = TimeSeriesSampler()
        self.client_processes: list[ClientProcessStats] = []
        """CPU and wall time of each client process of the load (set by the runner), for the self-check."""

    @classmethod
    def from_records_file(cls, path: Path, run_start_ns: int | None = None) -> MetricsCollector:
        """A collector over the records already in ``path`` (e.g. the ``requests.jsonl`` of a run that
        was interrupted or crashed), to summarise them; the file is not truncated and records added
        later are appended. Lines holding no record (a torn last line) are skipped and counted in
        :attr:`skipped_lines`."""
        log, existing = RecordLog.open_existing(path)
        collector = cls.__new__(cls)
        collector._setup(log, path, run_start_ns)
        for record in existing:
            collector._store.append(record)
        return collector

    # ----------------------------------------------------------------------- records
    @property
    def records(self) -> RecordLog:
        """Every record added so far, in the order added, read back lazily from the JSONL file
        (a ``Sequence[RequestRecord]``; each access reads the file)."""
        return self._log

    @property
    def skipped_lines(self) -> int:
        """Lines of the file given to :meth:`from_records_file` that held no record."""
        return self._log.skipped_lines

    def add_record(self, record: RequestRecord) -> None:
        """Append ``record`` to the JSONL file (batched: :mod:`.record_log`) and fold it into the columns.
        A value of the wrong type in the record counts as missing in the metrics; only a failed write
        (``OSError``) raises."""
        self._log.append(record)
        self._store.append(record)

    def columns(self) -> RequestColumns:
        """The compact columns of every record so far (:class:`.columns.RequestColumns`, no copy)."""
        return self._store.view()

    @property
    def memory_bytes(self) -> int:
        """Bytes held for the records: the columns (the JSONL file is on disk)."""
        return self._store.nbytes

    def close(self) -> None:
        """Close the JSONL file (records added later reopen it in append mode; reading works either way)."""
        self._log.close()

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
        c = self.columns()
        starts = [int(t[t > 0].min()) for t in (c.scheduled_ns, c.arrival_ns, c.send_ns) if bool((t > 0).any())]
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
        out = summarize(self.columns())
        out["scrape_errors"] = len(self._sampler.failures)
        return out

    def goodput(self, slos_ms: Mapping[str, float]) -> dict[str, Any]:
        """bench_serving's goodput block for this run (:func:`.definitions.slo_attainment`)."""
        c = self.columns()
        return d.slo_attainment(c, slos_ms, d.duration_s(c))

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
        return bench_serving_view(summarize(self.columns()), extra, goodput)

    # ----------------------------------------------------------------------- tables and files
    def to_dataframe(self) -> pd.DataFrame:
        """One row per request (columns :data:`.table.REQUEST_COLUMNS`): ``*_s`` timestamps in seconds
        from :attr:`run_start_ns`, ``*_ms`` per-request metrics, token counts, ids, errors. The ids and
        error texts are read back from the JSONL file."""
        return request_table(self.columns(), self._log, self.run_start_ns)

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
        import pandas as pd  # only the tables need pandas; the summary path does not load it

        t0 = self.run_start_ns
        rows = [(s.t_ns, s.target, s.metric, s.labels, s.value) for s in self._sampler.samples]
        rows += [(f.t_ns, f.target, SCRAPE_ERROR_METRIC, f"error={f.error}", 1.0) for f in self._sampler.failures]
        rows.sort(key=lambda row: row[0])
        return pd.DataFrame(
            [((t_ns - t0) / d.NS_PER_S, *rest) for t_ns, *rest in rows],
            columns=list(TIMESERIES_COLUMNS),
        )
