"""Shared scenario machinery: warm up, flush caches, run the open-loop workload with live progress
and server scraping, and write the results directory. Used by NodeTest and RoutingTest."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ..client.request_sender import RequestSender
from ..config.server_config import ServerSettings
from ..config.workload import WorkloadConfig
from ..errors import RunError
from ..fileio import write_json_atomic, write_text_atomic
from ..http_api import api_url, auth_headers
from ..load.dispatch import DispatchStats, dispatch
from ..metrics.collector import MetricsCollector
from ..metrics.prometheus import ScrapeTarget
from ..metrics.window import LoadPhases
from ..records import Request, RequestRecord
from ..servers.server import ProcessExit
from .coverage import ServerCoverage, prepare_server_coverage, report_server_coverage
from .progress import ProgressReporter
from .run_dir import RunDirectory, RunStatus

__all__ = ["ExecutionOptions", "LoadTarget", "ScenarioRun", "execute_workload", "run_to_completion"]

R = TypeVar("R")

logger = logging.getLogger(__name__)


@dataclass
class LoadTarget:
    """Where the workload goes: the base URL requests are sent to (a server, the router or our proxy),
    the servers whose caches are flushed after warmup, and the Prometheus endpoints scraped meanwhile."""

    base_url: str
    model: str
    api_key: str | None = None
    flush_urls: list[str] = field(default_factory=list)
    scrape_targets: list[ScrapeTarget] = field(default_factory=list)


@dataclass
class ScenarioRun:
    """One run's results directory, its collector, and what went wrong with the servers meanwhile.

    ``ScenarioRun.start`` claims the directory (an earlier run there is set aside, config.yaml /
    versions.json / run.json written at once); :meth:`write_results` writes the summary files and marks
    run.json ``completed``, ``interrupted`` or ``failed``.
    """

    directory: RunDirectory
    collector: MetricsCollector
    server_exits: list[ProcessExit] = field(default_factory=list)
    load_phases: LoadPhases | None = None
    """When the load started, its ramp-up and the end of its load phase (set as dispatch starts)."""

    @classmethod
    def start(cls, kind: str, output_dir: Path, config_dump: dict[str, Any]) -> ScenarioRun:
        """Claim ``output_dir`` for a run of ``kind`` and open its ``requests.jsonl``."""
        directory = RunDirectory.claim(output_dir, kind, config_dump)
        return cls(directory, MetricsCollector(records_path=output_dir / "requests.jsonl"))

    @property
    def output_dir(self) -> Path:
        """The run's results directory."""
        return self.directory.path

    def note_exits(self, exits: Sequence[ProcessExit]) -> None:
        """Record servers/routers that exited during the run (each once) and say so at once."""
        known = {e.name for e in self.server_exits}
        for exit_ in exits:
            if exit_.name not in known:
                known.add(exit_.name)
                self.server_exits.append(exit_)
                logger.error(
                    "%s exited during the run with code %d; last log lines:\n%s",
                    exit_.name,
                    exit_.exit_code,
                    exit_.log_tail,
                )

    def write_results(
        self,
        summary_line: dict[str, Any],
        status: RunStatus,
        output_file: Path | None = None,
        error: str | None = None,
    ) -> dict[str, Path]:
        """Write the documented layout (docs/results-layout.md), every file atomically; returns the paths.

        ``output_file`` (the user's ``--output-file``) gets the summary of a completed run appended as one
        JSON line, as bench_serving does, so earlier runs' lines are kept.
        """
        out = self.output_dir
        self.collector.close()
        line = {**summary_line, "status": status, "server_exits": [e.to_dict() for e in self.server_exits]}
        files: dict[str, Path] = {"jsonl": out / "requests.jsonl", "config": out / "config.yaml"}
        files["versions"] = out / "versions.json"
        files["json"] = write_json_atomic(out / "summary.json", line, one_line=True)
        files["csv"] = out / "requests.csv"
        self.collector.export_metrics("csv", files["csv"])
        ts = self.collector.timeseries_dataframe()
        if not ts.empty:
            files["timeseries"] = write_text_atomic(out / "timeseries.csv", ts.to_csv(index=False))
        if output_file is not None and status == "completed":
            output_file.parent.mkdir(parents=True, exist_ok=True)
            with output_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, default=str) + "\n")
            files["output_file"] = output_file
        files["run"] = self.directory.finish(
            status,
            records=len(self.collector.records),
            server_exits=[e.to_dict() for e in self.server_exits],
            **({"error": error} if error else {}),
        )
        return files


def _warmup_requests(requests: Sequence[Request], count: int) -> list[Request]:
    if not requests or count <= 0:
        return []
    first = requests[0]
    return [
        Request(
            request_id=f"warmup-{i}",
            prompt=first.prompt,
            prompt_len=first.prompt_len,
            output_len=min(first.output_len, 32),
            messages=list(first.messages),
            prompt_token_ids=first.prompt_token_ids,
        )
        for i in range(count)
    ]


async def _flush(session: aiohttp.ClientSession, url: str, api_key: str | None) -> None:
    headers = auth_headers(api_key)
    try:
        async with session.post(
            f"{url.rstrip('/')}/flush_cache?timeout=60", headers=headers, timeout=aiohttp.ClientTimeout(total=90)
        ) as resp:
            body = await resp.text()
            if resp.status != 200:
                logger.warning("flush_cache on %s answered %d: %s", url, resp.status, body[:200])
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        logger.warning("flush_cache on %s failed: %s", url, exc)


@dataclass
class ExecutionOptions:
    """How a workload is executed around the requests themselves."""

    flush_after_warmup: bool = True
    collect_timeseries: bool = True
    timeseries_interval_s: float = 0.5
    progress: bool = True
    label: str = ""
    watch_interval_s: float = 0.5
    drain_timeout_s: float | None = None
    """Cancel requests still running this long after the last arrival (None: wait for every one)."""


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """During the load: objects that exist before it (requests, configs, modules) are frozen out of
    the collector, and young collections run less often. A full collection of ~150k objects paused the
    event loop for ~85 ms, which showed up as arrival lag and TTFT error (benchmarks/client_precision.py)."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _watch_processes(run: ScenarioRun, watch: Callable[[], list[ProcessExit]], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        run.note_exits(watch())


def _load_phases(config: WorkloadConfig, requests: Sequence[Request], start_ns: int) -> LoadPhases:
    """The load phase ends at ``duration_s``, or for a load sized by ``num_prompts`` at the last arrival."""
    last = max((r.arrival_offset_s for r in requests), default=0.0)
    load_end_s = config.duration_s if config.duration_s is not None else last
    return LoadPhases(start_ns, config.ramp_up_s, load_end_s)


async def execute_workload(
    config: WorkloadConfig,
    requests: Sequence[Request],
    target: LoadTarget,
    run: ScenarioRun,
    options: ExecutionOptions | None = None,
    *,
    on_start: Callable[[], Awaitable[None]] | None = None,
    watch: Callable[[], list[ProcessExit]] | None = None,
) -> MetricsCollector:
    """Warm up, flush caches, then send ``requests`` open-loop into ``run.collector``; returns it.

    Records are appended to the run's ``requests.jsonl`` as they finish, so a crash or a signal loses
    nothing already measured. ``watch`` (e.g. ``ServerManager.unexpected_exits``) is polled during the
    run; servers that exit are noted on ``run``. On cancellation in-flight requests are recorded as
    cancelled and ``CancelledError`` propagates to the scenario, which writes the partial results.
    """
    opts = options or ExecutionOptions()
    url = api_url(target.base_url, config.api_type)
    collector = run.collector
    async with RequestSender(
        timeout_s=config.request_timeout_s,
        idle_timeout_s=config.stream_idle_timeout_s,
        api_key=target.api_key,
        model=target.model,
        ignore_eos=config.ignore_eos,
        extra_request_body=config.extra_request_body,
    ) as sender:
        warm = [
            await sender.send_request(r, url, config.api_type, stream=config.stream)
            for r in _warmup_requests(requests, config.warmup_requests)
        ]
        if warm and not any(r.success for r in warm):
            raise RunError(
                f"all {len(warm)} warmup requests to {url} failed (first error: {warm[0].error}); "
                "check that the server serves this api_type and model"
            )
        if opts.flush_after_warmup and target.flush_urls:
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(_flush(session, u, target.api_key) for u in target.flush_urls))
        reporter = ProgressReporter(len(requests), opts.label or "requests", enabled=opts.progress)

        def on_record(record: RequestRecord) -> None:
            collector.add_record(record)
            reporter.update(record)

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(
                request, url, config.api_type, stream=config.stream, scheduled_ns=scheduled_ns, arrival_ns=arrival_ns
            )

        stats = DispatchStats()
        scraping = opts.collect_timeseries and bool(target.scrape_targets)
        if scraping:
            await collector.start_collection(
                target.scrape_targets,
                interval_s=opts.timeseries_interval_s,
                client_sampler=lambda: {
                    "client_in_flight": stats.in_flight,
                    "client_waiting": stats.waiting,
                    "client_completed": stats.completed,
                    "client_errors": stats.errors,
                },
            )
        watcher = (
            asyncio.create_task(_watch_processes(run, watch, opts.watch_interval_s)) if watch is not None else None
        )
        try:
            if on_start is not None:
                await on_start()
            with _quiet_gc():  # collects first: its pause must come before the schedule starts
                start_ns = time.monotonic_ns()
                run.load_phases = _load_phases(config, requests, start_ns)
                await dispatch(
                    requests,
                    send,
                    max_concurrency=config.max_concurrency,
                    on_record=on_record,
                    start_ns=start_ns,
                    stats=stats,
                    keep_records=False,  # the collector streams them to disk and keeps only columns
                    drain_timeout_s=opts.drain_timeout_s,
                )
        finally:
            reporter.close()
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                run.note_exits(watch() if watch is not None else [])
            if scraping:
                await collector.stop_collection()
    return collector


async def run_to_completion(
    settings: ServerSettings,
    output_dir: Path,
    body: Callable[[], Awaitable[None]],
    finish: Callable[[RunStatus, str | None, ServerCoverage | None], R],
    keep_partial: Callable[[R], None],
) -> R:
    """Run ``body`` (start the servers, drive the load, stop the servers), then write the results
    whatever happened: ``finish(status, error, server_coverage)`` with ``completed``, or ``interrupted``
    / ``failed`` (its results handed to ``keep_partial``) before the cancellation or error propagates.
    Server coverage is prepared before the servers start and reported after they stopped."""
    try:
        prepare_server_coverage(settings, output_dir)
        await body()
    except asyncio.CancelledError:
        keep_partial(finish("interrupted", None, await report_server_coverage(settings, output_dir)))
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        keep_partial(finish("failed", error, await report_server_coverage(settings, output_dir)))
        raise
    return finish("completed", None, await report_server_coverage(settings, output_dir))
