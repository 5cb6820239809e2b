"""RoutingTest: N workers behind the real sglang-router or our Python router, one seeded workload,
per-worker attribution; ``RoutingTest.compare`` runs the same workload once per policy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.routing_config import RoutingConfig
from ..config.stages import format_stages
from ..errors import RouterError, RunInterrupted
from ..fileio import write_text_atomic
from ..load.request_generator import RequestGenerator
from ..metrics.per_worker import counter_increase, load_imbalance, per_worker_table
from ..metrics.prometheus import ScrapeTarget
from ..records import Request
from ..results import RepeatedRunResults, RunResults
from ..servers.manager import ServerManager, kill_all_processes
from ..servers.server import SGLangServer
from ..strategies.routing.factory import RoutingFactory
from ..strategies.routing.proxy import RoutingProxy
from .attribution import router_attribution
from .coverage import ServerCoverage
from .measurement import bench_line, measured_summary
from .pd_routing import pd_bootstrap_ports, pd_context, pd_results, pd_workers
from .run_dir import RunStatus
from .runner import ExecutionOptions, LoadTarget, ScenarioRun, execute_workload, run_to_completion
from .signals import run_with_signals

__all__ = ["RouterEndpoint", "RoutingTest"]

logger = logging.getLogger(__name__)


@dataclass
class RouterEndpoint:
    """Where clients send traffic and what the router exposes for scraping."""

    base_url: str
    impl: str
    scrape: ScrapeTarget | None
    proxy: RoutingProxy | None = None


class RoutingTest:
    """Workers + router + workload. ``results = RoutingTest(config).run()``,
    ``test.visualize_results(results)``, ``RoutingTest.compare(config, ["cache_aware", "round_robin"])``."""

    def __init__(self, config: RoutingConfig, output_file: str | Path | None = None) -> None:
        self.config = config
        self.output_file = Path(output_file) if output_file else None
        self.partial_results: RunResults | None = None
        """After an interrupted or failed run: what was measured until then (also on disk)."""

    # ------------------------------------------------------------------ public API
    def run(self) -> RunResults:
        """Run the test (blocking); every process is stopped afterwards. SIGINT/SIGTERM stop it cleanly
        and raise :class:`RunInterrupted` carrying the partial results."""
        try:
            return run_with_signals(self.run_async(), escalate=kill_all_processes)
        except RunInterrupted as exc:
            exc.results = self.partial_results
            raise

    async def run_async(self, requests: Sequence[Request] | None = None) -> RunResults:
        """The test as a coroutine. ``requests`` lets comparisons reuse one generated workload. With
        ``repeats`` > 1 it runs the test that many times (each repeat generates its workload from its
        seed) and returns :class:`RepeatedRunResults` (scenarios/repeats.py)."""
        cfg = self.config
        if cfg.repeats > 1:
            from .repeats import run_repeats

            return await run_repeats("routing", cfg, type(self), self.output_file, self._keep_partial)
        reqs = list(requests) if requests is not None else RequestGenerator(seed=cfg.seed).generate_requests(cfg)
        run = ScenarioRun.start("routing", cfg.output_dir, cfg.model_dump(mode="json"))
        context: dict[str, Any] = {"name": cfg.name or cfg.routing_policy, "workers": {}, "num_workers": 0}

        async def body() -> None:
            nonlocal context
            async with ServerManager(log_dir=cfg.output_dir / "server_logs") as manager:
                workers = await manager.start_servers(cfg.worker_server_configs(pd_bootstrap_ports(cfg, manager)))
                async with self._router(manager, workers) as router:
                    context = await self._drive(manager, workers, router, reqs, run)

        def finish(status: RunStatus, error: str | None, covered: ServerCoverage | None) -> RunResults:
            return self._finish(run, context, status, error=error, server_coverage=covered)

        return await run_to_completion(cfg, cfg.output_dir, body, finish, self._keep_partial)

    def visualize_results(self, results: RunResults) -> list[Path]:
        """Per-worker distribution bars, latency CDF, per-worker queue depth over time (PNG files, whose
        paths are returned), and ``report.html`` with the summary, plots, config and warnings
        (``results.files["report"]``). Repeated results: each repeat's plots and page, then the combined
        page."""
        from ..analysis.html_pages import write_repeats_report, write_run_report
        from ..analysis.routing_plots import plot_routing_results

        if isinstance(results, RepeatedRunResults):
            paths = [path for rep in results.repeats for path in self.visualize_results(rep)]
            html = write_repeats_report(results)
            if html is not None:
                results.files["report"] = html
            return paths
        if results.output_dir is None:
            return []
        paths = plot_routing_results(results, results.output_dir / "plots")
        for path in paths:
            results.files[f"plot_{path.stem}"] = path
        html = write_run_report(results, paths)
        if html is not None:
            results.files["report"] = html
        return paths

    @classmethod
    def compare(cls, config: RoutingConfig, policies: Sequence[str], output_dir: str | Path | None = None) -> Any:
        """Run the same seeded workload once per policy (fresh workers per arm, each warmed up and
        flushed) and return a :class:`~sglang_test_framework.scenarios.policy_comparison.PolicyComparison`."""
        from .policy_comparison import compare_policies

        return compare_policies(cls, config, policies, Path(output_dir) if output_dir else None)

    # ------------------------------------------------------------------ internals
    def _keep_partial(self, results: RunResults) -> None:
        self.partial_results = results

    @contextlib.asynccontextmanager
    async def _router(self, manager: ServerManager, workers: list[SGLangServer]) -> AsyncIterator[RouterEndpoint]:
        cfg = self.config
        if cfg.uses_real_router:
            handle = await manager.start_router(
                cfg.router, [w.base_url for w in workers], cfg.routing_policy, pd=pd_workers(cfg, workers)
            )
            scrape = ScrapeTarget(name=handle.router_id, url=handle.metrics_url or "", pid=handle.pid)
            try:
                yield RouterEndpoint(handle.base_url, cfg.router_implementation, scrape)
            finally:
                manager.stop_router(handle.router_id)
            return
        policy = RoutingFactory.create(cfg.routing_policy, [w.server_id for w in workers], router_config=cfg.router)
        proxy = RoutingProxy(
            {w.server_id: w.base_url for w in workers},
            policy,
            host=cfg.router.host,
            port=cfg.router.port,
            metrics_interval_s=cfg.router.metrics_interval_s,
            api_key=cfg.api_key,
        )
        try:
            await proxy.start()
        except OSError as exc:
            raise RouterError(
                f"the Python router could not listen on {cfg.router.host}:{cfg.router.port} ({exc}); "
                "set router port to a free port, or 0 to pick one"
            ) from exc
        try:
            yield RouterEndpoint(proxy.url, "python", None, proxy)
        finally:
            await proxy.stop()

    async def _inject_failures(
        self,
        manager: ServerManager,
        workers: list[SGLangServer],
        events: list[dict[str, Any]],
        trail: dict[str, list[list[float]]],
    ) -> None:
        """Kill the scheduled workers at their times; an empty list restarts every killed worker. Each
        worker's ``trail`` holds its request counter per process lifetime: the value just before a kill
        ends one, the value just after a restart begins the next, so the requests served add up across
        restarts."""
        start = time.monotonic()
        killed: list[SGLangServer] = []
        for at_s, indices in sorted(self.config.failure_schedule.items()):
            await asyncio.sleep(max(0.0, at_s - (time.monotonic() - start)))
            if not indices:
                for w in killed:
                    logger.warning("failure schedule: restarting %s at t=%.1fs", w.server_id, at_s)
                    await manager.restart_server(w.server_id)
                    after_restart = await self._server_counters(manager, [w])
                    trail.setdefault(w.server_id, [[]]).append([after_restart[w.server_id]])
                    events.append(
                        {"t_s": round(time.monotonic() - start, 3), "event": "restarted", "worker_id": w.server_id}
                    )
                killed = []
                continue
            for i in indices:
                logger.warning("failure schedule: killing %s at t=%.1fs", workers[i].server_id, at_s)
                before_kill = await self._server_counters(manager, [workers[i]])
                trail.setdefault(workers[i].server_id, [[]])[-1].append(before_kill[workers[i].server_id])
                await asyncio.to_thread(manager.kill_server, workers[i].server_id)
                killed.append(workers[i])
                events.append(
                    {"t_s": round(time.monotonic() - start, 3), "event": "killed", "worker_id": workers[i].server_id}
                )

    async def _server_counters(self, manager: ServerManager, workers: list[SGLangServer]) -> dict[str, float]:
        async def one(w: SGLangServer) -> tuple[str, float]:
            if not w.is_alive():
                return w.server_id, float("nan")
            data = await asyncio.to_thread(manager.get_server_metrics, w.server_id)
            return w.server_id, float(data["metrics"].get("sglang:num_requests_total", float("nan")))

        return dict(await asyncio.gather(*(one(w) for w in workers)))

    async def _drive(
        self,
        manager: ServerManager,
        workers: list[SGLangServer],
        router: RouterEndpoint,
        requests: list[Request],
        run: ScenarioRun,
    ) -> dict[str, Any]:
        cfg = self.config
        scrape = [ScrapeTarget(name=w.server_id, url=w.metrics_url, pid=w.pid, api_key=cfg.api_key) for w in workers]
        if router.scrape is not None:
            scrape.append(router.scrape)
        target = LoadTarget(router.base_url, cfg.model_path, cfg.api_key, [w.base_url for w in workers], scrape)
        events: list[dict[str, Any]] = []
        counters: dict[str, dict[str, float]] = {}
        trail: dict[str, list[list[float]]] = {}
        failure_task: asyncio.Task[None] | None = None

        async def on_start() -> None:
            nonlocal failure_task
            counters["start"] = await self._server_counters(manager, workers)
            if cfg.failure_schedule:
                failure_task = asyncio.create_task(self._inject_failures(manager, workers, events, trail))

        options = ExecutionOptions(
            flush_after_warmup=cfg.flush_cache_after_warmup,
            collect_timeseries=cfg.collect_timeseries,
            timeseries_interval_s=cfg.timeseries_interval_s,
            progress=cfg.progress,
            label=cfg.name or cfg.routing_policy,
        )
        try:
            await execute_workload(
                cfg, requests, target, run, options, on_start=on_start, watch=manager.unexpected_exits
            )
        finally:
            if failure_task is not None:
                failure_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await failure_task
        counters["end"] = await self._server_counters(manager, workers)
        return self._context(workers, router, events, _served(counters, trail))

    def _context(
        self,
        workers: list[SGLangServer],
        router: RouterEndpoint,
        events: list[dict[str, Any]],
        served: tuple[dict[str, float], list[str]],
    ) -> dict[str, Any]:
        cfg = self.config
        ctx: dict[str, Any] = {
            "name": cfg.name or f"{cfg.routing_policy}",
            "tag": cfg.name or cfg.routing_policy,
            "model": cfg.model_path,
            "backend": cfg.backend,
            "routing_policy": cfg.routing_policy,
            "router_impl": router.impl,
            "router_settings": cfg.router.resilience_settings(router.impl),
            "router_url": router.base_url,
            "num_workers": len(workers),
            "workers": {w.server_id: w.base_url for w in workers},
            "request_rate": cfg.request_rate,
            "virtual_users": cfg.virtual_users,
            "stages": format_stages(cfg.stages) or None,
            "max_concurrency": cfg.max_concurrency,
            "num_prompts": cfg.num_prompts,
            "duration_s": cfg.duration_s,
            "dataset_name": cfg.dataset_name,
            "max_running_requests": workers[0].server_info.get("max_running_requests", cfg.max_running_requests)
            if workers
            else None,
            "server_requests_served": served[0],
            "server_counter_resets": served[1],
            "failure_events": events,
            **pd_context(cfg),
        }
        if router.proxy is not None:
            ctx["router_overhead"] = router.proxy.stats()
        return ctx

    def _finish(
        self,
        run: ScenarioRun,
        context: dict[str, Any],
        status: RunStatus,
        error: str | None = None,
        server_coverage: ServerCoverage | None = None,
    ) -> RunResults:
        cfg = self.config
        collector = run.collector
        summary = measured_summary(run, cfg)
        summary["status"] = status
        summary["server_exits"] = [e.to_dict() for e in run.server_exits]
        if cfg.workload_mix:
            from ..analysis.workload_breakdown import per_workload_summary

            summary["per_workload"] = per_workload_summary(collector.records)
        if cfg.coverage:
            summary["server_coverage"] = server_coverage.to_dict() if server_coverage else None
        df = collector.to_dataframe()
        attribution = router_attribution(collector.records, df, {u: w for w, u in context["workers"].items()})
        if attribution["routed"]:
            summary["router_attribution"] = attribution
        table = per_worker_table(df, list(context["workers"]), context.get("server_requests_served", {}))
        summary["load_imbalance"] = load_imbalance(table)
        summary["num_workers"] = context["num_workers"]
        pd_table = pd_results(cfg, collector.records, summary, table)
        if "router_overhead" in context:
            summary["router_decision_us_mean"] = _mean_decision_us(context["router_overhead"])
        line = {
            **bench_line(summary, context),
            **summary,
            "context": context,
            "per_worker": table.to_dict(orient="records"),
        }
        config_dump = cfg.model_dump(mode="json")
        files = run.write_results(line, status, self.output_file, error)
        files["per_worker"] = write_text_atomic(cfg.output_dir / "per_worker.csv", table.to_csv(index=False))
        files.update(server_coverage.files() if server_coverage else {})
        if pd_table is not None:
            files["pd_breakdown"] = write_text_atomic(cfg.output_dir / "pd_breakdown.csv", pd_table.to_csv(index=False))
        return RunResults(
            name=context["name"],
            kind="routing",
            summary=summary,
            requests=df,
            records=collector.records,
            timeseries=collector.timeseries_dataframe(),
            config=config_dump,
            context=context,
            output_dir=cfg.output_dir,
            files=files,
            per_worker=table,
        )


def _served(
    counters: dict[str, dict[str, float]], trail: dict[str, list[list[float]]]
) -> tuple[dict[str, float], list[str]]:
    """Requests each worker served during the load: the increase of its request counter from the start
    to the end, summed over its process lifetimes when the failure schedule restarted it (``trail``), and
    the workers whose counter was reset — restarted, or found lower than before (then the increase is
    a lower bound: :func:`counter_increase`). NaN when the counter could not be read."""
    served: dict[str, float] = {}
    resets: list[str] = []
    for worker, end in counters["end"].items():
        lifetimes = [list(segment) for segment in trail.get(worker, [[]])]
        lifetimes[0].insert(0, counters.get("start", {}).get(worker, math.nan))
        lifetimes[-1].append(end)
        increases = [counter_increase(segment) for segment in lifetimes]
        counted = [value for value, _ in increases if not math.isnan(value)]
        served[worker] = sum(counted) if counted else math.nan
        if len(lifetimes) > 1 or any(reset for _, reset in increases):
            resets.append(worker)
    return served, resets


def _mean_decision_us(stats: Any) -> float | None:
    values = [float(s.get("mean_decision_us", 0.0)) for s in stats.values()] if isinstance(stats, dict) else []
    return sum(values) / len(values) if values else None
