"""What the subcommands that run a RoutingTest share: its flags (RoutingConfig and ``--router-*``
RouterConfig fields) and the config they build (YAML + flags, router flags merged over the YAML's)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_args import add_model_arguments, collect_model_values
from .config.router_config import RouterConfig
from .config.routing_config import RoutingConfig

__all__ = ["add_routing_study_arguments", "routing_config_from_args"]


def add_routing_study_arguments(p: argparse.ArgumentParser) -> None:
    """``--config``, ``-v``, ``-q``, every RoutingConfig field and every RouterConfig field as ``--router-*``."""
    p.add_argument("--config", type=Path, help="YAML file with RoutingConfig fields; flags override it")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_arguments(p, RoutingConfig, "routing test", {"model_path": ["--model"], "name": ["--tag"]})
    add_model_arguments(p, RouterConfig, "router (--router-*)", prefix="router_")


def routing_config_from_args(args: argparse.Namespace, defaults: dict[str, Any]) -> RoutingConfig:
    """The RoutingConfig of ``defaults`` + ``--config`` + flags; ``--router-*`` flags override the
    YAML's ``router`` fields one by one; ``-q`` turns the progress bar off."""
    from .cli import build_config

    router_values = collect_model_values(args, RouterConfig, prefix="router_")
    config: RoutingConfig = build_config(RoutingConfig, args, defaults)
    if router_values:
        merged = {**config.router.explicit_values(), **router_values}
        config = build_config(RoutingConfig, args, {**defaults, "router": merged})
    if args.quiet:
        config.progress = False
    return config
