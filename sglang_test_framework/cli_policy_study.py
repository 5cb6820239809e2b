"""``sglang-test policy-study``: every SMG policy on the same seeded shared-prefix workload (and a trace
with ``--trace-path``) behind the real SMG; table, JSON and plot (docs/routing.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_args import add_model_arguments, collect_model_values
from .config.router_config import SMG_POLICIES, RouterConfig
from .config.routing_config import RoutingConfig

__all__ = ["add_policy_study_parser"]


def add_policy_study_parser(sub: Any) -> None:
    """Register ``policy-study`` under the command subparsers ``sub``."""
    p = sub.add_parser("policy-study", help="compare every SMG policy: cache hits, TTFT, throughput, imbalance")
    p.add_argument("--config", type=Path, help="YAML file with RoutingConfig fields; flags override it")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--policies", nargs="+", choices=SMG_POLICIES, default=list(SMG_POLICIES), help="SMG policies (default: all)"
    )
    p.add_argument("--trace-path", type=Path, help="also run a trace workload (dataset_name=trace) from this file")
    add_model_arguments(p, RoutingConfig, "routing test", {"model_path": ["--model"], "name": ["--tag"]})
    add_model_arguments(p, RouterConfig, "router (--router-*)", prefix="router_")
    p.set_defaults(handler=_run_policy_study)


def _run_policy_study(args: argparse.Namespace) -> int:
    from .cli import _sim_defaults, build_config
    from .scenarios.policy_study import run_policy_study
    from .scenarios.routing import RoutingTest

    defaults: dict[str, Any] = {**_sim_defaults(args), "output_dir": Path("results/policy_study")}
    router_values = collect_model_values(args, RouterConfig, prefix="router_")
    config = build_config(RoutingConfig, args, defaults)
    if router_values:
        config = build_config(
            RoutingConfig, args, {**defaults, "router": {**config.router.explicit_values(), **router_values}}
        )
    if args.quiet:
        config.progress = False
    study = run_policy_study(RoutingTest, config, args.policies, args.trace_path)
    print(study.to_text())
    print(f"Policy study: {', '.join(str(p) for p in study.files.values())}")
    return 0
