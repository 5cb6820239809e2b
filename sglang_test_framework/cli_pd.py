"""``sglang-test pd-compare``: PD vs co-located on the same number of simulated GPUs (docs/pd.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_args import add_model_arguments, collect_model_values
from .config.router_config import RouterConfig
from .config.routing_config import RoutingConfig

__all__ = ["add_pd_compare_parser"]


def add_pd_compare_parser(sub: Any) -> None:
    """Register ``pd-compare`` under the command subparsers ``sub``."""
    p = sub.add_parser(
        "pd-compare", help="PD (prefill/decode workers behind SMG) vs co-located on the same GPUs, same workload"
    )
    p.add_argument("--config", type=Path, help="YAML file with RoutingConfig fields; flags override it")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_arguments(p, RoutingConfig, "routing test", {"model_path": ["--model"], "name": ["--tag"]})
    add_model_arguments(p, RouterConfig, "router (--router-*)", prefix="router_")
    p.set_defaults(handler=_run_pd_compare)


def _run_pd_compare(args: argparse.Namespace) -> int:
    from .cli import _sim_defaults, build_config
    from .scenarios.pd_comparison import compare_pd_colocated
    from .scenarios.routing import RoutingTest

    defaults: dict[str, Any] = {**_sim_defaults(args), "output_dir": Path("results/pd_compare")}
    router_values = collect_model_values(args, RouterConfig, prefix="router_")
    config = build_config(RoutingConfig, args, defaults)
    if router_values:
        config = build_config(
            RoutingConfig, args, {**defaults, "router": {**config.router.explicit_values(), **router_values}}
        )
    if args.quiet:
        config.progress = False
    comparison = compare_pd_colocated(RoutingTest, config)
    print(comparison.to_text())
    print(f"Comparison: {', '.join(str(p) for p in comparison.files.values())}")
    failed = sum(int(r.summary.get("failed") or 0) for r in comparison.results.values())
    return 1 if failed else 0
