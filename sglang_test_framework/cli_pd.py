"""``sglang-test pd-compare``: PD vs co-located on the same number of simulated GPUs (docs/pd.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_routing import add_routing_study_arguments, routing_config_from_args

__all__ = ["add_pd_compare_parser"]


def add_pd_compare_parser(sub: Any) -> None:
    """Register ``pd-compare`` under the command subparsers ``sub``."""
    p = sub.add_parser(
        "pd-compare", help="PD (prefill/decode workers behind SMG) vs co-located on the same GPUs, same workload"
    )
    add_routing_study_arguments(p)
    p.set_defaults(handler=_run_pd_compare)


def _run_pd_compare(args: argparse.Namespace) -> int:
    from .cli import _sim_defaults
    from .scenarios.pd_comparison import compare_pd_colocated
    from .scenarios.routing import RoutingTest

    config = routing_config_from_args(args, {**_sim_defaults(args), "output_dir": Path("results/pd_compare")})
    comparison = compare_pd_colocated(RoutingTest, config)
    print(comparison.to_text())
    print(f"Comparison: {', '.join(str(p) for p in comparison.files.values())}")
    failed = sum(int(r.summary.get("failed") or 0) for r in comparison.results.values())
    return 1 if failed else 0
