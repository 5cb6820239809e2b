"""Highest request rate that meets SLOs: grow the rate until SLO attainment drops below the target,
then bisect. One server serves every probe (its prefix cache is flushed before each)."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from ..config.node_config import NodeConfig
from ..errors import ConfigError
from ..load.request_generator import RequestGenerator
from ..metrics.prometheus import ScrapeTarget
from ..servers.manager import ServerManager, kill_all_processes
from .runner import ExecutionOptions, LoadTarget, ScenarioRun, execute_workload
from .signals import run_with_signals

__all__ = ["RateProbe", "SLOSearchResult", "find_max_rate"]

logger = logging.getLogger(__name__)


@dataclass
class RateProbe:
    """One measured rate."""

    request_rate: float
    attainment: float
    request_throughput: float
    request_goodput: float
    passed: bool


@dataclass
class SLOSearchResult:
    """The best rate that met the SLOs (0.0 if even the lowest probe failed) and every probe."""

    slos_ms: dict[str, float]
    target_attainment: float
    best_rate: float
    probes: list[RateProbe] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return {
            "slos_ms": self.slos_ms,
            "target_attainment": self.target_attainment,
            "best_rate": self.best_rate,
            "probes": [vars(p) for p in self.probes],
        }


async def _probe(
    config: NodeConfig, rate: float, target: LoadTarget, slos_ms: dict[str, float], target_attainment: float
) -> RateProbe:
    cfg = config.with_updates(request_rate=rate, warmup_requests=0)
    requests = RequestGenerator(seed=cfg.seed).generate_requests(cfg)
    run = ScenarioRun.start("slo-probe", cfg.output_dir / f"rate_{rate:.3f}", cfg.model_dump(mode="json"))
    options = ExecutionOptions(collect_timeseries=False, progress=cfg.progress, label=f"rate {rate:.2f}")
    try:
        collector = await execute_workload(cfg, requests, target, run, options)
    except asyncio.CancelledError:
        run.write_results(run.collector.get_metrics(), "interrupted")
        raise
    summary = collector.get_metrics()
    run.write_results(summary, "completed")
    att = collector.goodput(slos_ms)
    probe = RateProbe(
        rate,
        float(att["slo_attainment"]),
        float(summary.get("request_throughput") or 0.0),
        float(att["request_goodput"]),
        float(att["slo_attainment"]) >= target_attainment,
    )
    logger.info("rate %.2f: attainment %.3f (%s)", rate, probe.attainment, "pass" if probe.passed else "fail")
    return probe


async def find_max_rate_async(
    config: NodeConfig,
    slos_ms: dict[str, float],
    target_attainment: float = 0.9,
    start_rate: float = 1.0,
    max_rate: float = 1024.0,
    bisect_steps: int = 4,
) -> SLOSearchResult:
    """Coroutine form of :func:`find_max_rate`."""
    if not slos_ms or any(k not in ("ttft", "tpot", "e2el") for k in slos_ms):
        raise ConfigError("slos_ms: give one or more of ttft, tpot, e2el in milliseconds, e.g. --goodput ttft:500")
    if not 0 < target_attainment <= 1:
        raise ConfigError(f"target_attainment: must be in (0, 1], got {target_attainment}; e.g. 0.9")
    result = SLOSearchResult(dict(slos_ms), target_attainment, 0.0)
    async with ServerManager(log_dir=config.output_dir / "server_logs") as manager:
        server = await manager.start_server(config.to_server_config())
        target = LoadTarget(
            server.base_url,
            config.served_model_name or config.model_path,
            config.api_key,
            [server.base_url],
            [ScrapeTarget(name=server.server_id, url=server.metrics_url)],
        )
        lo, hi, rate = 0.0, math.inf, start_rate
        while rate <= max_rate:  # grow geometrically until a probe fails
            probe = await _probe(config, rate, target, slos_ms, target_attainment)
            result.probes.append(probe)
            if not probe.passed:
                hi = rate
                break
            lo, rate = rate, rate * 2
        if math.isfinite(hi):
            for _ in range(bisect_steps):
                mid = (lo + hi) / 2 if lo > 0 else hi / 2
                probe = await _probe(config, mid, target, slos_ms, target_attainment)
                result.probes.append(probe)
                lo, hi = (mid, hi) if probe.passed else (lo, mid)
        result.best_rate = lo
    return result


def find_max_rate(
    config: NodeConfig,
    slos_ms: dict[str, float],
    target_attainment: float = 0.9,
    start_rate: float = 1.0,
    max_rate: float = 1024.0,
    bisect_steps: int = 4,
) -> SLOSearchResult:
    """The highest request rate (req/s) whose SLO attainment (bench_serving's definition: share of
    requests that succeeded and met every SLO) is ≥ ``target_attainment``. ``slos_ms`` keys: ttft, tpot,
    e2el. Each probe sends ``config.num_prompts`` requests at its rate."""
    return run_with_signals(
        find_max_rate_async(config, slos_ms, target_attainment, start_rate, max_rate, bisect_steps),
        escalate=kill_all_processes,
    )
