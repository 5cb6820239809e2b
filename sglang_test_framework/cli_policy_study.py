"""``sglang-test policy-study``: every SMG policy on the same seeded shared-prefix workload (and a trace
with ``--trace-path``) behind the real SMG; table, JSON and plot (docs/routing.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_routing import add_routing_study_arguments, routing_config_from_args
from .config.router_config import SMG_POLICIES

__all__ = ["add_policy_study_parser"]


def add_policy_study_parser(sub: Any) -> None:
    """Register ``policy-study`` under the command subparsers ``sub``."""
    p = sub.add_parser("policy-study", help="compare every SMG policy: cache hits, TTFT, throughput, imbalance")
    p.add_argument(
        "--policies", nargs="+", choices=SMG_POLICIES, default=list(SMG_POLICIES), help="SMG policies (default: all)"
    )
    p.add_argument("--trace-path", type=Path, help="also run a trace workload (dataset_name=trace) from this file")
    add_routing_study_arguments(p)
    p.set_defaults(handler=_run_policy_study)


def _run_policy_study(args: argparse.Namespace) -> int:
    from .cli import _sim_defaults
    from .scenarios.policy_study import run_policy_study
    from .scenarios.routing import RoutingTest

    config = routing_config_from_args(args, {**_sim_defaults(args), "output_dir": Path("results/policy_study")})
    study = run_policy_study(RoutingTest, config, args.policies, args.trace_path)
    print(study.to_text())
    print(f"Policy study: {', '.join(str(p) for p in study.files.values())}")
    return 0
