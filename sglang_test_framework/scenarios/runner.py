"""Shared scenario machinery: warm up, flush caches, run the open-loop workload with live progress
and server scraping, and write the results directory. Used by NodeTest and RoutingTest."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
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
from ..load.dispatch import DispatchStats
from ..load.shards import auto_client_processes, partition_requests, sizing_load, split_concurrency, unit_count
from ..metrics.client_check import measure_client_process
from ..metrics.collector import MetricsCollector
from ..metrics.prometheus import ScrapeTarget
from ..metrics.window import LoadPhases
from ..records import ClientProcessStats, Request, RequestRecord
from ..servers.server import ProcessExit
from ..shards.pool import START_LEAD_S, LocalShardPool
from ..shards.ray_pool import RAY_START_LEAD_S, RayShardPool
from ..shards.runner import SenderSettings, ShardRunner, ShardSpec, quiet_gc
from .coverage import ServerCoverage, prepare_server_coverage, report_server_coverage
from .progress import ProgressReporter
from .run_dir import RunDirectory, RunStatus

__all__ = [
    "CLIENT_LOG_DIR",
    "ExecutionOptions",
    "LoadTarget",
    "ScenarioRun",
    "client_process_count",
    "execute_workload",
    "run_to_completion",
    "shard_specs",
]

R = TypeVar("R")

logger = logging.getLogger(__name__)

CLIENT_LOG_DIR = "client_logs"
"""Under the results directory: each client worker process's stderr (``client-<i>.log``)."""


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
            prompt_source=first.prompt_source,
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


async def _watch_processes(run: ScenarioRun, watch: Callable[[], list[ProcessExit]], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        run.note_exits(watch())


def _load_phases(config: WorkloadConfig, requests: Sequence[Request], start_ns: int) -> LoadPhases | None:
    """The load phase ends at ``duration_s``, or for a load sized by ``num_prompts`` at the last arrival.
    None for closed-loop chains (sessions, virtual users): their last arrival is known only from the
    records (the measurement window takes it from them)."""
    if any(r.chain_id is not None for r in requests):
        return None
    last = max((r.arrival_offset_s for r in requests), default=0.0)
    load_end_s = config.duration_s if config.duration_s is not None else last
    return LoadPhases(start_ns, config.ramp_up_s, load_end_s)


def _sender_settings(config: WorkloadConfig, target: LoadTarget) -> SenderSettings:
    return SenderSettings(
        url=api_url(target.base_url, config.api_type),
        api_type=config.api_type,
        stream=config.stream,
        model=target.model,
        api_key=target.api_key,
        timeout_s=config.request_timeout_s,
        idle_timeout_s=config.stream_idle_timeout_s,
        ignore_eos=config.ignore_eos,
        extra_request_body=config.extra_request_body,
    )


async def _warm_up(
    config: WorkloadConfig,
    requests: Sequence[Request],
    target: LoadTarget,
    sender: RequestSender,
    opts: ExecutionOptions,
) -> None:
    """Send the warmup requests (failing the run when every one fails), then flush the servers' caches."""
    url = api_url(target.base_url, config.api_type)
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


LoadFn = Callable[[int, Callable[[RequestRecord], None]], Awaitable[None]]
"""Runs the load from ``start_ns``, handing every record to the callback (one process or a pool)."""


@dataclass
class _Drive:
    """What :func:`_drive` needs besides the load itself."""

    config: WorkloadConfig
    requests: Sequence[Request]
    target: LoadTarget
    run: ScenarioRun
    opts: ExecutionOptions
    on_start: Callable[[], Awaitable[None]] | None
    watch: Callable[[], list[ProcessExit]] | None


async def _drive(d: _Drive, stats: DispatchStats, load: LoadFn, lead_ns: int = 0) -> None:
    """Progress, server scraping with the live client counters, the process watch and the quiet GC
    around ``load``, which starts ``lead_ns`` after the start is decided."""
    opts, collector = d.opts, d.run.collector
    reporter = ProgressReporter(len(d.requests), opts.label or "requests", enabled=opts.progress)

    def on_record(record: RequestRecord) -> None:
        collector.add_record(record)
        reporter.update(record)

    scraping = opts.collect_timeseries and bool(d.target.scrape_targets)
    if scraping:
        await collector.start_collection(
            d.target.scrape_targets,
            interval_s=opts.timeseries_interval_s,
            client_sampler=lambda: {
                "client_in_flight": stats.in_flight,
                "client_waiting": stats.waiting,
                "client_completed": stats.completed,
                "client_errors": stats.errors,
            },
        )
    watch = d.watch
    watcher = asyncio.create_task(_watch_processes(d.run, watch, opts.watch_interval_s)) if watch else None
    try:
        if d.on_start is not None:
            await d.on_start()
        with quiet_gc():  # collects first: its pause must come before the schedule starts
            start_ns = time.monotonic_ns() + lead_ns
            d.run.load_phases = _load_phases(d.config, d.requests, start_ns)
            await load(start_ns, on_record)
    finally:
        reporter.close()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            d.run.note_exits(watch() if watch is not None else [])
        if scraping:
            await collector.stop_collection()


def client_process_count(config: WorkloadConfig, requests: Sequence[Request]) -> int:
    """How many client processes send ``requests``: ``client_processes`` when set, else automatic
    (:func:`~..load.shards.auto_client_processes` of :func:`~..load.shards.sizing_load`: the rate, the
    stages' peak, or the virtual-user count); never more than there are requests / chains."""
    units = max(1, unit_count(requests))
    if config.client_processes is not None:
        return min(config.client_processes, units)
    if config.client_nodes is not None:  # one shard per Ray node
        return min(config.client_nodes, units)
    return auto_client_processes(sizing_load(config), requests, config.max_concurrency, os.cpu_count() or 1)


def shard_specs(
    config: WorkloadConfig,
    requests: Sequence[Request],
    settings: SenderSettings,
    processes: int,
    opts: ExecutionOptions,
) -> list[ShardSpec]:
    """The shards of ``requests`` (load/shards.py), each with its share of ``max_concurrency``."""
    parts = partition_requests(requests, processes)
    limits = split_concurrency(config.max_concurrency, processes)
    return [ShardSpec(i, part, settings, limits[i], opts.drain_timeout_s) for i, part in enumerate(parts)]


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
    """Warm up, flush caches, then send ``requests`` on their schedule into ``run.collector``; returns it.

    With more than one client process (``config.client_processes``, automatic by default:
    :func:`client_process_count`) the requests are split into shards (chains whole) sent by worker
    processes on one shared schedule; their records stream into the same collector
    (docs/client-processes.md). Records are appended to the run's ``requests.jsonl`` as they finish, so
    a crash or a signal loses nothing already measured. ``watch`` (e.g.
    ``ServerManager.unexpected_exits``) is polled during the run; servers that exit are noted on
    ``run``. On cancellation in-flight requests are recorded as cancelled and ``CancelledError``
    propagates to the scenario, which writes the partial results. ``collector.client_processes`` gets
    the CPU and wall time of every client process.
    """
    opts = options or ExecutionOptions()
    settings = _sender_settings(config, target)
    drive = _Drive(config, requests, target, run, opts, on_start, watch)
    processes = client_process_count(config, requests)
    if processes > 1 or config.client_nodes is not None:
        await _execute_in_processes(drive, settings, processes)
        return run.collector
    spec = ShardSpec(0, list(requests), settings, config.max_concurrency, opts.drain_timeout_s)
    async with ShardRunner(spec) as shard:
        await _warm_up(config, requests, target, shard.sender, opts)

        async def load(start_ns: int, on_record: Callable[[RequestRecord], None]) -> None:
            await shard.run(start_ns, on_record, run.collector.client_processes)

        await _drive(drive, shard.stats, load)
    return run.collector


async def _execute_in_processes(d: _Drive, settings: SenderSettings, processes: int) -> None:
    """The load sent by ``processes`` worker processes (shards/pool.py); this process warms up, then
    only merges their records (its own CPU is listed after theirs, with ``requests`` 0)."""
    async with settings.open() as sender:
        await _warm_up(d.config, d.requests, d.target, sender, d.opts)
    specs = [s for s in shard_specs(d.config, d.requests, settings, processes, d.opts) if s.requests]
    stats = DispatchStats()
    driver: list[ClientProcessStats] = []
    log_dir, nodes = d.run.output_dir / CLIENT_LOG_DIR, d.config.client_nodes
    pool = (
        LocalShardPool(specs, log_dir)
        if nodes is None
        else RayShardPool(specs, min(nodes, len(specs)), d.config.client_ray_address, log_dir)
    )
    async with pool:

        async def load(start_ns: int, on_record: Callable[[RequestRecord], None]) -> None:
            try:
                with measure_client_process(driver, lambda: 0, index=len(specs)):
                    await pool.run(start_ns, on_record, stats)
            finally:
                d.run.collector.client_processes.extend([*pool.process_stats, *driver])

        await _drive(d, stats, load, lead_ns=int((START_LEAD_S if nodes is None else RAY_START_LEAD_S) * 1e9))


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
