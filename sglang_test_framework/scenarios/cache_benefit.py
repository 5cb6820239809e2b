"""Cache benefit, measured: the same seeded workload run with the radix cache disabled, enabled but
flushed (cold) and enabled and pre-warmed by the cold pass (warm); TTFT and latency speedups by prompt
length bucket and by turn (docs/stress.md, "Cache benefit").

One server per cache setting is started (sim or SGLang) and every pass is an ordinary NodeTest against
it in its own directory (``<output_dir>/<mode>/``): ``disabled`` on a server started with
``--disable-radix-cache``; ``cold`` on a server with the cache, flushed after the warmup; ``warm`` on
the same server right after the cold pass, no warmup and no flush, so the cache holds what the cold
pass left (prompts that fit in the KV pool). With ``backend='external'`` the server's cache setting
cannot be changed, so only ``cold`` and ``warm`` run.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.cache_benefit import DEFAULT_BUCKET_EDGES, cache_benefit_tables, format_cache_benefit
from ..config.node_config import NodeConfig
from ..errors import ConfigError, RunError
from ..fileio import write_json_atomic
from ..results import RunResults
from ..servers.manager import ServerManager, kill_all_processes
from .node import NodeTest
from .signals import run_with_signals

__all__ = ["RESULT_FILE", "CacheBenefitResult", "run_cache_benefit"]

RESULT_FILE = "cache_benefit.json"
PLOT_FILE = "cache_benefit.png"

# Fields a pass against an already running server must not carry (they launch or instrument a server).
_LAUNCH_ONLY = (
    "sim_args",
    "sim_profile",
    "sim_ground_truth_log",
    "record_ground_truth",
    "coverage",
    "coverage_include",
    "coverage_dir",
    "port",
    "url",
    "repeats",
)


@dataclass
class CacheBenefitResult:
    """Each mode's run and the comparison (:func:`..analysis.cache_benefit.cache_benefit_tables`)."""

    runs: dict[str, RunResults]
    comparison: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def to_text(self) -> str:
        """The console tables."""
        return format_cache_benefit(self.comparison)


def _pass_config(base: NodeConfig, mode: str, url: str) -> NodeConfig:
    values = {k: v for k, v in base.explicit_values().items() if k not in _LAUNCH_ONLY}
    values.update(
        backend="external",
        url=url,
        name=f"cache-{mode}",
        output_dir=base.output_dir / mode,
        flush_cache_after_warmup=mode != "warm",
        warmup_requests=0 if mode == "warm" else base.warmup_requests,
        disable_radix_cache=mode == "disabled",
    )
    return NodeConfig.build(source=f"cache-benefit {mode} pass", **values)


async def _passes_on_server(base: NodeConfig, modes: Sequence[str], runs: dict[str, RunResults]) -> None:
    """Start one server with ``base``'s settings (unless external) and run ``modes`` against it in order."""
    async with ServerManager(log_dir=base.output_dir / "server_logs") as manager:
        server = await manager.start_server(base.to_server_config())
        for mode in modes:
            test = NodeTest(_pass_config(base, mode, server.base_url))
            runs[mode] = await test.run_async()
            dead = manager.unexpected_exits()
            if dead:
                raise RunError(f"{dead[0].name} exited during the {mode} pass (code {dead[0].exit_code}); see its log")


def _check(base: NodeConfig) -> None:
    if base.repeats != 1:
        raise ConfigError(f"repeats: {base.repeats}; cache-benefit runs each mode once, leave repeats at 1")
    if base.disable_radix_cache:
        raise ConfigError("disable_radix_cache: cache-benefit runs both settings itself; leave the flag off")


async def _run(base: NodeConfig, edges: Sequence[int]) -> CacheBenefitResult:
    _check(base)
    base.output_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, RunResults] = {}
    if base.backend != "external":
        await _passes_on_server(base.with_updates(disable_radix_cache=True), ["disabled"], runs)
    await _passes_on_server(base, ["cold", "warm"], runs)
    comparison = cache_benefit_tables({mode: run.requests for mode, run in runs.items()}, edges)
    comparison["runs"] = {mode: str(run.output_dir) for mode, run in runs.items()}
    result = CacheBenefitResult(runs, comparison, base.output_dir)
    result.files["json"] = write_json_atomic(base.output_dir / RESULT_FILE, comparison)
    if base.write_plots:
        from ..analysis.cache_benefit_plots import plot_cache_benefit

        settings = f"{base.dataset_name}, {base.num_prompts} requests, backend {base.backend}"
        result.files["plot"] = plot_cache_benefit(comparison, base.output_dir / PLOT_FILE, settings)
    return result


def run_cache_benefit(base: NodeConfig, bucket_edges: Sequence[int] = DEFAULT_BUCKET_EDGES) -> CacheBenefitResult:
    """Run the workload of ``base`` in every cache mode and compare them (blocking; SIGINT/SIGTERM stop it
    cleanly, each finished pass keeps its results directory).

    Args:
        base: The workload and server settings; its ``output_dir`` receives one directory per mode,
            ``cache_benefit.json`` and ``cache_benefit.png``.
        bucket_edges: Prompt-length bucket edges in tokens (ascending).

    Raises:
        ConfigError: ``repeats`` ≠ 1, ``disable_radix_cache`` set, or bad bucket edges.
    """
    edges = list(bucket_edges)
    if not edges or any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] <= 0:
        raise ConfigError(f"bucket_edges: {edges}; give ascending token counts > 0, e.g. 512 1024 2048")
    return run_with_signals(_run(base, edges), escalate=kill_all_processes)
