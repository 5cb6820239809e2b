"""Run one seeded routing workload once per policy and compare (the scenario behind
``RoutingTest.compare`` and ``sglang-test routing --policies a b c``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config.routing_config import RoutingConfig
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..load.request_generator import RequestGenerator
from ..results import RunResults
from ..servers.manager import kill_all_processes
from .signals import run_with_signals

if TYPE_CHECKING:
    from .routing import RoutingTest

__all__ = ["COMPARISON_COLUMNS", "PolicyComparison", "compare_policies"]

COMPARISON_COLUMNS = (
    "completed",
    "failed",
    "request_throughput",
    "output_throughput",
    "mean_ttft",
    "p50_ttft",
    "p99_ttft",
    "mean_itl",
    "p99_itl",
    "mean_server_latency",
    "p99_server_latency",
    "cache_hit_rate",
    "load_imbalance",
)


@dataclass
class PolicyComparison:
    """One row per policy; ``results[policy]`` holds each arm's full RunResults."""

    table: pd.DataFrame
    results: dict[str, RunResults]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def to_text(self) -> str:
        """Aligned plain-text table, each column's unit in its header."""
        from ..analysis.metric_text import metric_rows_text

        return metric_rows_text(self.table)


def comparison_table(results: dict[str, RunResults]) -> pd.DataFrame:
    """Key metrics side by side (rows = policies)."""
    rows = []
    for policy, res in results.items():
        s = res.summary
        row: dict[str, Any] = {"policy": policy, "router": res.context.get("router_impl")}
        for col in COMPARISON_COLUMNS:
            key = "median_" + col[4:] if col.startswith("p50_") and col not in s else col
            row[col] = s.get(col, s.get(key))
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")


async def _run_arms(
    test_cls: type[RoutingTest], config: RoutingConfig, policies: Sequence[str], base_dir: Path
) -> dict[str, RunResults]:
    requests = RequestGenerator(seed=config.seed).generate_requests(config)
    results: dict[str, RunResults] = {}
    for policy in policies:
        arm = config.with_updates(routing_policy=policy, name=policy, output_dir=base_dir / policy)
        results[policy] = await test_cls(arm).run_async(requests)
    return results


def compare_policies(
    test_cls: type[RoutingTest], config: RoutingConfig, policies: Sequence[str], output_dir: Path | None = None
) -> PolicyComparison:
    """Blocking: run every policy arm, write ``comparison.csv`` / ``comparison.txt``, plots and
    ``report.html``."""
    from ..analysis.html_pages import REPORT_FILE, policy_comparison_html, write_report
    from ..analysis.routing_plots import plot_policy_comparison

    if not policies:
        raise ConfigError("policies: give at least one policy name, e.g. --policies cache_aware round_robin")
    base_dir = output_dir or config.output_dir
    base_dir.mkdir(parents=True, exist_ok=True)
    results = run_with_signals(_run_arms(test_cls, config, policies, base_dir), escalate=kill_all_processes)
    table = comparison_table(results)
    comp = PolicyComparison(table, results, base_dir)
    comp.files["csv"] = base_dir / "comparison.csv"
    table.to_csv(comp.files["csv"])
    comp.files["text"] = write_text_atomic(base_dir / "comparison.txt", comp.to_text() + "\n")
    plots = plot_policy_comparison(results, base_dir / "plots") if config.write_plots else []
    for path in plots:
        comp.files[f"plot_{path.stem}"] = path
    page = policy_comparison_html(table, results, plots, config.model_dump(mode="json"))
    comp.files["report"] = write_report(base_dir / REPORT_FILE, page)
    return comp
