"""What the comparison scenarios share: one seeded workload run once per arm (fresh servers each), a
metric looked up in each arm's summary, and the comparison object they return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..config.routing_config import RoutingConfig
from ..load.request_generator import RequestGenerator
from ..results import RunResults

if TYPE_CHECKING:
    from .routing import RoutingTest

__all__ = ["HEADLINE_COLUMNS", "ArmComparison", "run_arms", "summary_value"]

HEADLINE_COLUMNS = (
    "completed",
    "failed",
    "request_throughput",
    "output_throughput",
    "mean_ttft",
    "p50_ttft",
    "p99_ttft",
    "mean_itl",
)
"""The first columns of every comparison table (each scenario adds its own after them)."""


def summary_value(summary: dict[str, Any], column: str) -> Any:
    """``summary[column]``; a ``p50_*`` column missing there is read as ``median_*``; else None."""
    if column in summary:
        return summary[column]
    if column.startswith("p50_"):
        return summary.get("median_" + column[4:])
    return None


async def run_arms(
    test_cls: type[RoutingTest], workload: RoutingConfig, arms: dict[str, RoutingConfig]
) -> dict[str, RunResults]:
    """Generate the requests of ``workload`` once (its seed) and run every arm on them, in order."""
    requests = RequestGenerator(seed=workload.seed).generate_requests(workload)
    return {arm: await test_cls(cfg).run_async(requests) for arm, cfg in arms.items()}


@dataclass
class ArmComparison:
    """One row per arm; ``results[arm]`` holds each arm's full RunResults; ``files`` what was written."""

    table: pd.DataFrame
    results: dict[str, RunResults]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
