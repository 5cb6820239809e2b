"""NodeTest: launch one server (sim, SGLang or external), run a seeded workload, report.

From the command line: ``sglang-test node …`` (or the spec's
``python -m sglang_test_framework.tests.node_test …``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ..analysis.plots import plot_node_results
from ..analysis.report import format_node_report
from ..config.node_config import NodeConfig
from ..load.request_generator import RequestGenerator
from ..metrics.prometheus import ScrapeTarget
from ..results import RunResults
from ..servers.manager import ServerManager
from ..servers.server import SGLangServer
from .runner import LoadTarget, execute_workload, write_run_files
from .signals import terminate_as_interrupt

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
        "num_prompts": config.num_prompts,
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

    def run(self) -> RunResults:
        """Run the test (blocking). Ctrl-C stops it cleanly; servers are always stopped."""
        with terminate_as_interrupt():
            return asyncio.run(self.run_async())

    async def run_async(self) -> RunResults:
        """The test as a coroutine (for callers that already run an event loop)."""
        cfg = self.config
        out = cfg.output_dir
        out.mkdir(parents=True, exist_ok=True)
        requests = RequestGenerator(seed=cfg.seed).generate_requests(cfg)
        async with ServerManager(log_dir=out / "server_logs") as manager:
            server = await manager.start_server(cfg.to_server_config())
            scrape = (
                [ScrapeTarget(name=server.server_id, url=server.metrics_url, pid=server.pid, api_key=cfg.api_key)]
                if cfg.enable_metrics
                else []
            )
            target = LoadTarget(
                server.base_url, cfg.served_model_name or cfg.model_path, cfg.api_key, [server.base_url], scrape
            )
            run = await execute_workload(
                cfg,
                requests,
                target,
                out,
                flush_after_warmup=cfg.flush_cache_after_warmup,
                collect_timeseries=cfg.collect_timeseries,
                timeseries_interval_s=cfg.timeseries_interval_s,
                progress=cfg.progress,
                label=cfg.name or "node test",
            )
            context = _context(cfg, server)
        return self._finish(run.collector, context)

    def _finish(self, collector: Any, context: dict[str, Any]) -> RunResults:
        cfg = self.config
        summary = collector.get_metrics()
        summary["max_server_queue_depth"] = _max_series(collector.timeseries_dataframe(), "sglang:num_queue_reqs")
        summary["max_server_running"] = _max_series(collector.timeseries_dataframe(), "sglang:num_running_reqs")
        line = {**collector.bench_serving_summary(context), **summary, "context": context}
        config_dump = cfg.model_dump(mode="json")
        files = write_run_files(cfg.output_dir, config_dump, line, collector, self.output_file)
        return RunResults(
            name=context["name"],
            kind="node",
            summary=summary,
            requests=collector.to_dataframe(),
            records=list(collector.records),
            timeseries=collector.timeseries_dataframe(),
            config=config_dump,
            context=context,
            output_dir=cfg.output_dir,
            files=files,
        )

    def analyze_results(self, results: RunResults, print_report: bool = True) -> str:
        """Print the Node Test Results report and write PNG plots next to the results."""
        report = format_node_report(results.summary, results.context)
        if print_report:
            print(report)
        if results.output_dir is not None and self.config.write_plots:
            pngs = plot_node_results(results.requests, results.timeseries, results.output_dir / "plots")
            for i, path in enumerate(pngs):
                results.files[f"plot_{i}"] = path
            if print_report and pngs:
                print(f"Plots: {', '.join(str(p) for p in pngs)}")
        if print_report and results.files:
            print(f"Results: {results.output_dir}")
        return report
