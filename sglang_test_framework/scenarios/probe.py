"""A series of probes on one server, in a directory the series claims like a run: the SLO search and
the saturation sweep use it.

The series directory holds ``config.yaml``, ``versions.json`` and ``run.json`` (claimed at the start,
an earlier run there set aside), ``server_logs/`` and ``probes/<NN>-rate-<r>/``: one run directory per
probe (docs/results-layout.md), so no probe ever writes into another run's results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.node_config import NodeConfig
from ..config.search_config import ProbeSettings
from ..errors import RunError
from ..load.request_generator import RequestGenerator
from ..metrics.prometheus import ScrapeTarget
from ..servers.manager import ServerManager
from ..servers.server import ProcessExit
from .measurement import bench_line, measured_goodput, measured_summary
from .run_dir import RunDirectory, RunStatus
from .runner import ExecutionOptions, LoadTarget, ScenarioRun, execute_workload

__all__ = ["ProbeOutcome", "ProbeSeries", "probe_config", "probe_series"]

logger = logging.getLogger(__name__)


@dataclass
class ProbeOutcome:
    """One probe: its target rate and seed, where it wrote, its windowed summary and goodput block."""

    index: int
    rate: float
    seed: int
    duration_s: float
    output_dir: Path
    summary: dict[str, Any]
    goodput: dict[str, Any] | None = None

    def value(self, key: str) -> float | None:
        """A numeric summary value (None when missing or not a number)."""
        value = self.summary.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def probe_config(
    base: NodeConfig,
    settings: ProbeSettings,
    rate: float,
    output_dir: Path,
    seed: int | None = None,
    first: bool = False,
    burst_requests: int | None = None,
) -> NodeConfig:
    """The NodeConfig of one probe at ``rate`` req/s: sized by time (:meth:`ProbeSettings.probe_duration_s`;
    ``request_rate=inf`` keeps a burst of ``num_prompts``), measured over ``measure_window: auto``, its
    own ``output_dir``; the base's warmup requests for the ``first`` probe only (the server stays warm).
    A burst (``rate=inf``) sends ``burst_requests`` (default: the base's ``num_prompts`` or ``min_requests``).

    Raises:
        ConfigError: The base config cannot be probed this way (e.g. a dataset that defines its own count).
    """
    values = base.explicit_values()
    num_prompts = values.pop("num_prompts", None)
    base_duration = values.pop("duration_s", None)
    values.pop("repeats", None)
    values.update(request_rate=rate, output_dir=output_dir, seed=base.seed if seed is None else seed)
    values["warmup_requests"] = base.warmup_requests if first else 0
    values.setdefault("name", f"{base.name or 'probe'} @ {rate:g} req/s")
    if math.isinf(rate):
        size = burst_requests or num_prompts or settings.min_requests
        values.update(num_prompts=size, measure_window="all", ramp_up_s=0.0)
    else:
        duration = settings.probe_duration_s(rate, base.ramp_up_s, num_prompts, base_duration)
        values.update(duration_s=duration, measure_window="auto")
        values["ramp_up_start_rate"] = min(base.ramp_up_start_rate, rate)
    return NodeConfig.build(source=f"probe at {rate:g} req/s", **values)


@dataclass
class ProbeSeries:
    """The server, the series directory and the probes run so far."""

    base: NodeConfig
    settings: ProbeSettings
    kind: str
    directory: RunDirectory
    target: LoadTarget
    context: dict[str, Any]
    watch: Callable[[], list[ProcessExit]]
    probes: list[ProbeOutcome] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The series directory."""
        return self.directory.path

    async def run(
        self,
        rate: float,
        *,
        seed: int | None = None,
        slos_ms: Mapping[str, float] | None = None,
        label: str = "",
        burst_requests: int | None = None,
    ) -> ProbeOutcome:
        """Run one probe at ``rate`` (req/s; ``inf`` for a burst of ``burst_requests``) into
        ``probes/<NN>-rate-<r>/``.

        Raises:
            RunError: A server exited during the probe (its log tail is in the probe's run.json).
        """
        index = len(self.probes) + 1
        out = self.path / "probes" / f"{index:02d}-rate-{rate:.4g}"
        cfg = probe_config(
            self.base, self.settings, rate, out, seed, first=not self.probes, burst_requests=burst_requests
        )
        requests = RequestGenerator(seed=cfg.seed).generate_requests(cfg)
        run = ScenarioRun.start(f"{self.kind}-probe", out, cfg.model_dump(mode="json"))
        drain_s = self.settings.drain_s(cfg.duration_s or 0.0)
        options = ExecutionOptions(
            flush_after_warmup=cfg.flush_cache_after_warmup,
            collect_timeseries=cfg.collect_timeseries,
            timeseries_interval_s=cfg.timeseries_interval_s,
            progress=cfg.progress,
            label=label or f"probe {index}: {rate:g} req/s",
            drain_timeout_s=None if math.isinf(rate) else drain_s,
        )
        context = {**self.context, "request_rate": rate, "num_prompts": cfg.num_prompts, "duration_s": cfg.duration_s}
        try:
            await execute_workload(cfg, requests, self.target, run, options, watch=self.watch)
        except BaseException as exc:
            status: RunStatus = "interrupted" if isinstance(exc, asyncio.CancelledError) else "failed"
            summary = measured_summary(run, cfg)
            run.write_results({**bench_line(summary, context), **summary, "context": context}, status)
            raise
        summary = measured_summary(run, cfg)
        goodput = measured_goodput(run, cfg, slos_ms) if slos_ms else None
        line = {**bench_line(summary, context), **summary, **(goodput or {}), "context": context}
        run.write_results(line, "completed")
        if run.server_exits:
            first = run.server_exits[0]
            raise RunError(f"{first.name} exited with code {first.exit_code} during probe {index} ({out})")
        outcome = ProbeOutcome(index, rate, cfg.seed, float(cfg.duration_s or 0.0), out, summary, goodput)
        self.probes.append(outcome)
        return outcome


def _context(base: NodeConfig, info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": base.name or f"node-{base.backend}",
        "model": base.model_path,
        "backend": base.backend,
        "max_running_requests": info.get("max_running_requests", base.max_running_requests),
        "dataset_name": base.dataset_name,
        "api_type": base.api_type,
        "max_concurrency": base.max_concurrency,
        "sim_profile": info.get("sim_profile"),
    }


@contextlib.asynccontextmanager
async def probe_series(
    base: NodeConfig, settings: ProbeSettings, kind: str, dump: dict[str, Any]
) -> AsyncIterator[ProbeSeries]:
    """Claim ``settings.output_dir`` for a series of ``kind`` (``dump`` becomes its config.yaml), start
    the server once and yield the series; the server stops when the block ends. The caller marks the
    directory's run.json ``completed`` / ``interrupted`` / ``failed`` (:meth:`RunDirectory.finish`)."""
    directory = RunDirectory.claim(settings.output_dir, kind, dump)
    server_base = base.with_updates(output_dir=settings.output_dir)
    try:
        async with ServerManager(log_dir=settings.output_dir / "server_logs") as manager:
            server = await manager.start_server(server_base.to_server_config())
            scrape = (
                [ScrapeTarget(name=server.server_id, url=server.metrics_url, pid=server.pid, api_key=base.api_key)]
                if base.enable_metrics
                else []
            )
            target = LoadTarget(
                server.base_url, base.served_model_name or base.model_path, base.api_key, [server.base_url], scrape
            )
            context = _context(base, server.server_info)
            logger.info("%s: server %s ready; probes go to %s/probes", kind, server.base_url, settings.output_dir)
            yield ProbeSeries(base, settings, kind, directory, target, context, manager.unexpected_exits)
    except BaseException as exc:
        if directory.status == "running":  # the server did not start, or the caller did not finish it
            status: RunStatus = "interrupted" if isinstance(exc, asyncio.CancelledError) else "failed"
            directory.finish(status, error=f"{type(exc).__name__}: {exc}")
        raise
