"""NodeTest: launch one server (sim, SGLang or external), run a seeded workload, report.

From the command line: ``sglang-test node …`` (or the spec's
``python -m sglang_test_framework.tests.node_test …``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..analysis.html_pages import write_run_report
from ..analysis.plots import plot_node_results
from ..analysis.report import format_node_report
from ..analysis.workload_breakdown import format_workload_table, per_workload_summary
from ..config.node_config import NodeConfig
from ..config.stages import format_stages
from ..errors import RunInterrupted
from ..load.request_generator import RequestGenerator
from ..metrics.prometheus import ScrapeTarget
from ..results import RepeatedRunResults, RunResults
from ..servers.manager import ServerManager, kill_all_processes
from ..servers.server import SGLangServer
from .coverage import ServerCoverage
from .measurement import bench_line, measured_summary
from .run_dir import RunStatus
from .runner import ExecutionOptions, LoadTarget, ScenarioRun, execute_workload, run_to_completion
from .signals import run_with_signals

__all__ = ["NodeTest"]

logger = logging.getLogger(__name__)


def _context(config: NodeConfig, server: SGLangServer) -> dict[str, Any]:
    info = server.server_info
    return {
        "name": config.name or f"node-{config.backend}",
        "tag": config.name,
        "model": config.model_path,
        "backend": config.backend,
        "base_url": server.base_url,
        "max_running_requests": info.get("max_running_requests", config.max_running_requests),
        "max_total_num_tokens": info.get("max_total_num_tokens"),
        "tp_size": config.tp_size,
        "request_rate": config.request_rate,
        "virtual_users": config.virtual_users,
        "stages": format_stages(config.stages) or None,
        "num_prompts": config.num_prompts,
        "duration_s": config.duration_s,
        "dataset_name": config.dataset_name,
        "api_type": config.api_type,
        "max_concurrency": config.max_concurrency,
        "sim_profile": info.get("sim_profile"),
        "startup_s": round(server.startup_s, 3),
    }


def _max_series(ts: Any, metric: str) -> float | None:
    """Largest sampled value of a server gauge (None without time series)."""
    if ts.empty:
        return None
    values = ts.loc[ts["metric"] == metric, "value"]
    return float(values.max()) if len(values) else None


class NodeTest:
    """One server under load. ``results = NodeTest(config).run()`` then ``test.analyze_results(results)``."""

    def __init__(self, config: NodeConfig, output_file: str | Path | None = None) -> None:
        self.config = config
        self.output_file = Path(output_file) if output_file else None
        self.partial_results: RunResults | None = None
        """After an interrupted or failed run: what was measured until then (also on disk)."""

    def run(self) -> RunResults:
        """Run the test (blocking). SIGINT/SIGTERM stop it cleanly and raise :class:`RunInterrupted`
        carrying the partial results; a second signal kills every process at once."""
        try:
            return run_with_signals(self.run_async(), escalate=kill_all_processes)
        except RunInterrupted as exc:
            exc.results = self.partial_results
            raise

    async def run_async(self) -> RunResults:
        """The test as a coroutine (for callers that already run an event loop). With ``repeats`` > 1 it
        runs the test that many times and returns :class:`RepeatedRunResults` (scenarios/repeats.py)."""
        cfg = self.config
        if cfg.repeats > 1:
            from .repeats import run_repeats

            return await run_repeats("node", cfg, NodeTest, self.output_file, self._keep_partial)
        requests = RequestGenerator(seed=cfg.seed).generate_requests(cfg)
        run = ScenarioRun.start("node", cfg.output_dir, cfg.model_dump(mode="json"))
        context: dict[str, Any] = {"name": cfg.name or f"node-{cfg.backend}", "backend": cfg.backend}

        async def body() -> None:
            nonlocal context
            async with ServerManager(log_dir=cfg.output_dir / "server_logs") as manager:
                server = await manager.start_server(cfg.to_server_config())
                context = _context(cfg, server)
                scrape = (
                    [ScrapeTarget(name=server.server_id, url=server.metrics_url, pid=server.pid, api_key=cfg.api_key)]
                    if cfg.enable_metrics
                    else []
                )
                target = LoadTarget(
                    server.base_url, cfg.served_model_name or cfg.model_path, cfg.api_key, [server.base_url], scrape
                )
                options = ExecutionOptions(
                    flush_after_warmup=cfg.flush_cache_after_warmup,
                    collect_timeseries=cfg.collect_timeseries,
                    timeseries_interval_s=cfg.timeseries_interval_s,
                    progress=cfg.progress,
                    label=cfg.name or "node test",
                )
                await execute_workload(cfg, requests, target, run, options, watch=manager.unexpected_exits)

        def finish(status: RunStatus, error: str | None, covered: ServerCoverage | None) -> RunResults:
            return self._finish(run, context, status, error=error, server_coverage=covered)

        return await run_to_completion(cfg, cfg.output_dir, body, finish, self._keep_partial)

    def _keep_partial(self, results: RunResults) -> None:
        self.partial_results = results

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
        summary["max_server_queue_depth"] = _max_series(collector.timeseries_dataframe(), "sglang:num_queue_reqs")
        summary["max_server_running"] = _max_series(collector.timeseries_dataframe(), "sglang:num_running_reqs")
        summary["status"] = status
        summary["server_exits"] = [e.to_dict() for e in run.server_exits]
        if cfg.workload_mix:
            summary["per_workload"] = per_workload_summary(collector.records)
        if cfg.coverage:
            summary["server_coverage"] = server_coverage.to_dict() if server_coverage else None
        line = {**bench_line(summary, context), **summary, "context": context}
        files = run.write_results(line, status, self.output_file, error)
        files.update(server_coverage.files() if server_coverage else {})
        return RunResults(
            name=context["name"],
            kind="node",
            summary=summary,
            requests=collector.to_dataframe(),
            records=collector.records,
            timeseries=collector.timeseries_dataframe(),
            config=cfg.model_dump(mode="json"),
            context=context,
            output_dir=cfg.output_dir,
            files=files,
        )

    def analyze_results(self, results: RunResults, print_report: bool = True) -> str:
        """Print the Node Test Results report, write the PNG plots (unless ``write_plots`` is off) and
        ``report.html`` (report, plots, config and warnings in one file) next to the results. Repeated
        results get each repeat's plots and page, then the combined report and page."""
        if isinstance(results, RepeatedRunResults):
            return self._analyze_repeats(results, print_report)
        report = format_node_report(results.summary, results.context)
        if results.summary.get("per_workload"):
            report += "\n" + format_workload_table(results.summary["per_workload"])
        if print_report:
            print(report)
        pngs: list[Path] = []
        if results.output_dir is not None and self.config.write_plots:
            pngs = plot_node_results(results, results.output_dir / "plots")
            for i, path in enumerate(pngs):
                results.files[f"plot_{i}"] = path
            if print_report and pngs:
                print(f"Plots: {', '.join(str(p) for p in pngs)}")
        html = write_run_report(results, pngs)
        if html is not None:
            results.files["report"] = html
            if print_report:
                print(f"Report: {html}")
        if print_report and results.files:
            print(f"Results: {results.output_dir}")
        return report

    def _analyze_repeats(self, results: RepeatedRunResults, print_report: bool) -> str:
        from ..analysis.html_pages import write_repeats_report
        from ..analysis.repeats import format_repeats_report

        for rep in results.repeats:
            self.analyze_results(rep, print_report=False)
        report = format_repeats_report(results.summary, results.context)
        html = write_repeats_report(results)
        if html is not None:
            results.files["report"] = html
        if print_report:
            print(report)
            print(f"Report: {html}\nResults: {results.output_dir} (one directory per repeat: rep-0 …)")
        return report
