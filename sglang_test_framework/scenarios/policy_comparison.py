"""Run one seeded routing workload once per policy and compare (the scenario behind
``RoutingTest.compare`` and ``sglang-test routing --policies a b c``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config.routing_config import RoutingConfig
from ..errors import ConfigError
from ..fileio import write_text_atomic
from ..results import RunResults
from ..servers.manager import kill_all_processes
from .arms import HEADLINE_COLUMNS, ArmComparison, run_arms, summary_value
from .signals import run_with_signals

if TYPE_CHECKING:
    from .routing import RoutingTest

__all__ = ["COMPARISON_COLUMNS", "PolicyComparison", "compare_policies"]

COMPARISON_COLUMNS = (
    *HEADLINE_COLUMNS,
    "p99_itl",
    "mean_server_latency",
    "p99_server_latency",
    "cache_hit_rate",
    "load_imbalance",
)


@dataclass
class PolicyComparison(ArmComparison):
    """One row per policy; ``results[policy]`` holds each arm's full RunResults."""

    def to_text(self) -> str:
        """Aligned plain-text table, each column's unit in its header."""
        from ..analysis.metric_text import metric_rows_text

        return metric_rows_text(self.table)


def comparison_table(results: dict[str, RunResults]) -> pd.DataFrame:
    """Key metrics side by side (rows = policies)."""
    rows = []
    for policy, res in results.items():
        row: dict[str, Any] = {"policy": policy, "router": res.context.get("router_impl")}
        row.update({col: summary_value(res.summary, col) for col in COMPARISON_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")


def _arm_configs(config: RoutingConfig, policies: Sequence[str], base_dir: Path) -> dict[str, RoutingConfig]:
    return {p: config.with_updates(routing_policy=p, name=p, output_dir=base_dir / p) for p in policies}


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
    arms = _arm_configs(config, policies, base_dir)
    results = run_with_signals(run_arms(test_cls, config, arms), escalate=kill_all_processes)
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
