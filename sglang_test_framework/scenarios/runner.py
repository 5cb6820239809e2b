"""Shared scenario machinery: warm up, flush caches, run the open-loop workload with live progress
and server scraping, and write the results directory. Used by NodeTest and RoutingTest."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from ..client.request_sender import RequestSender
from ..config.workload import WorkloadConfig
from ..http_api import api_url, auth_headers
from ..load.dispatch import DispatchStats, dispatch
from ..metrics.collector import MetricsCollector
from ..metrics.prometheus import ScrapeTarget
from ..records import Request, RequestRecord
from .progress import ProgressReporter

__all__ = ["LoadTarget", "WorkloadRun", "execute_workload", "write_run_files"]

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
class WorkloadRun:
    """What one execution of a workload produced."""

    collector: MetricsCollector
    records: list[RequestRecord]
    warmup_records: list[RequestRecord]
    started_wall_s: float
    interrupted: bool = False


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


async def execute_workload(
    config: WorkloadConfig,
    requests: Sequence[Request],
    target: LoadTarget,
    output_dir: Path,
    *,
    flush_after_warmup: bool = True,
    collect_timeseries: bool = True,
    timeseries_interval_s: float = 0.5,
    progress: bool = True,
    label: str = "",
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> WorkloadRun:
    """Warm up, flush caches, then send ``requests`` open-loop and collect every record.

    Records are appended to ``output_dir/requests.jsonl`` as they finish, so a crash or Ctrl-C loses
    nothing already measured. On cancellation the partial run is returned with ``interrupted=True``
    after in-flight requests were marked cancelled.
    """
    url = api_url(target.base_url, config.api_type)
    collector = MetricsCollector(records_path=output_dir / "requests.jsonl")
    async with RequestSender(
        timeout_s=config.request_timeout_s,
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
            raise RuntimeError(f"all {len(warm)} warmup requests to {url} failed; first error: {warm[0].error}")
        if flush_after_warmup and target.flush_urls:
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(_flush(session, u, target.api_key) for u in target.flush_urls))
        reporter = ProgressReporter(len(requests), label or "requests", enabled=progress)

        def on_record(record: RequestRecord) -> None:
            collector.add_record(record)
            reporter.update(record)

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(
                request, url, config.api_type, stream=config.stream, scheduled_ns=scheduled_ns, arrival_ns=arrival_ns
            )

        stats = DispatchStats()
        if collect_timeseries and target.scrape_targets:
            await collector.start_collection(
                target.scrape_targets,
                interval_s=timeseries_interval_s,
                client_sampler=lambda: {
                    "client_in_flight": stats.in_flight,
                    "client_waiting": stats.waiting,
                    "client_completed": stats.completed,
                    "client_errors": stats.errors,
                },
            )
        if on_start is not None:
            await on_start()
        started_wall_s = time.time()
        interrupted = False
        records: list[RequestRecord] = []
        try:
            records = await dispatch(
                requests, send, max_concurrency=config.max_concurrency, on_record=on_record, stats=stats
            )
        except asyncio.CancelledError:
            interrupted = True
            records = list(collector.records)
            raise
        finally:
            reporter.close()
            if collect_timeseries and target.scrape_targets:
                await collector.stop_collection()
    return WorkloadRun(collector, records, warm, started_wall_s, interrupted)


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("sglang-test-framework", "sglang-router", "sglang", "aiohttp", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_run_files(
    output_dir: Path,
    config: dict[str, Any],
    summary_line: dict[str, Any],
    collector: MetricsCollector,
    output_file: Path | None = None,
) -> dict[str, Path]:
    """Write the documented results layout (docs/results-layout.md) and return the paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"jsonl": output_dir / "requests.jsonl"}
    files["json"] = output_dir / "summary.json"
    files["json"].write_text(json.dumps(summary_line, default=str) + "\n")
    files["csv"] = output_dir / "requests.csv"
    collector.export_metrics("csv", files["csv"])
    ts = collector.timeseries_dataframe()
    if not ts.empty:
        files["timeseries"] = output_dir / "timeseries.csv"
        ts.to_csv(files["timeseries"], index=False)
    files["config"] = output_dir / "config.yaml"
    files["config"].write_text(yaml.safe_dump(config, sort_keys=False))
    files["versions"] = output_dir / "versions.json"
    files["versions"].write_text(json.dumps(_versions(), indent=2) + "\n")
    if output_file is not None:  # written last and atomically: its existence means the run finished
        output_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = output_file.with_name(output_file.name + ".tmp")
        tmp.write_text(json.dumps(summary_line, default=str) + "\n")
        tmp.replace(output_file)
        files["output_file"] = output_file
    return files
