"""``sglang-test stress --preset NAME`` and ``sglang-test cache-benefit`` (docs/stress.md).

Exit codes of ``stress``: 0 PASS, 1 FAIL (success rate below the threshold, a server exited, or the load
could not start), 2 bad configuration, 130 / 143 interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_args import add_model_arguments, collect_model_values
from .config.base import load_yaml_mapping
from .config.node_config import NodeConfig
from .config.routing_config import RoutingConfig
from .config.stress_config import StressOptions
from .errors import ConfigError

__all__ = ["add_cache_benefit_parser", "add_stress_parser"]

CACHE_BENEFIT_DEFAULTS: dict[str, Any] = {
    "dataset_name": "multi-turn",
    "multi_turn_num_conversations": 12,
    "multi_turn_turns": 4,
    "multi_turn_user_len": 1024,
    "multi_turn_assistant_len": 32,
    "multi_turn_think_time_s": 0.1,
    "request_rate": 4.0,
}
"""The default cache-benefit workload: 12 conversations of 4 turns, 1k new tokens per turn (prompts
1k → 4k tokens), so prefill dominates TTFT and reuse shows. ``--config`` and flags override any field;
with another ``--dataset-name`` the multi-turn fields are simply unused."""


def _common_node_args(p: argparse.ArgumentParser, skip: set[str]) -> None:
    from .cli import NODE_ALIASES, _add_common

    _add_common(p)
    add_model_arguments(p, NodeConfig, "node config (overrides the preset)", NODE_ALIASES, skip=skip)


def add_stress_parser(sub: Any) -> None:
    """The ``stress`` subcommand."""
    p = sub.add_parser(
        "stress",
        help="run a stress preset (high-concurrency, sustained-load, burst-traffic, mixed-workload) to a PASS/FAIL "
        "verdict (exit 0 PASS, 1 FAIL)",
    )
    p.add_argument("--list", action="store_true", help="list the presets and their settings, then exit")
    add_model_arguments(p, StressOptions, "stress")
    _common_node_args(p, skip={"repeats", "repeat_seed"})
    add_model_arguments(
        p,
        RoutingConfig,
        "routing (any of these runs the preset on a RoutingTest: workers behind a router)",
        skip=set(NodeConfig.model_fields),
    )
    p.set_defaults(handler=_run_stress)


def _user_values(args: argparse.Namespace) -> dict[str, Any]:
    values = load_yaml_mapping(args.config) if getattr(args, "config", None) else {}
    return {**NodeConfig.yaml_values(values), **collect_model_values(args, NodeConfig)}


def _routing_mode(args: argparse.Namespace) -> bool:
    """True when the user gave a routing-only field (flag or YAML): the preset runs on a RoutingTest."""
    routing_only = set(RoutingConfig.model_fields) - set(NodeConfig.model_fields)
    yaml_keys = set(load_yaml_mapping(args.config)) if getattr(args, "config", None) else set()
    given = yaml_keys | set(collect_model_values(args, RoutingConfig))
    if not given & (routing_only | {"routing_config"}):
        return False
    node_only = sorted(set(collect_model_values(args, NodeConfig)) - set(RoutingConfig.model_fields))
    if node_only:
        flag = "--" + node_only[0].replace("_", "-")
        raise ConfigError(f"{flag}: a node-test flag, not used when the preset runs on a fleet; leave it out")
    return True


def _list_presets() -> int:
    from .scenarios.stress import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name}: {preset.description}")
        for key, value in preset.values.items():
            print(f"    {key}: {value}")
    return 0


def _run_stress(args: argparse.Namespace) -> int:
    from .cli import _print_routing, _sim_defaults, build_config

    if args.list:
        return _list_presets()
    if "preset" not in vars(args):
        raise ConfigError("--preset: required; one of high-concurrency, sustained-load, burst-traffic, mixed-workload")
    options = StressOptions.build("stress flags", **collect_model_values(args, StressOptions))
    from .scenarios.stress import preset_values, run_stress

    defaults = {
        **_sim_defaults(args),
        "output_dir": Path("results/stress") / options.preset,
        "name": f"stress-{options.preset}",
        **preset_values(options.preset, options.scale, given=_user_values(args)),
    }
    routing = _routing_mode(args)
    config = build_config(RoutingConfig if routing else NodeConfig, args, defaults)
    if args.quiet:
        config.progress = False
    outcome = run_stress(options, config)
    if routing and outcome.results is not None:
        _print_routing(outcome.results)
    print(outcome.verdict.line())
    print(f"Verdict: {outcome.files['verdict']}")
    return 0 if outcome.verdict.passed else 1


def add_cache_benefit_parser(sub: Any) -> None:
    """The ``cache-benefit`` subcommand."""
    p = sub.add_parser(
        "cache-benefit",
        help="run one workload with the radix cache disabled, flushed (cold) and pre-warmed (warm); speedups by "
        "prompt length and turn",
    )
    p.add_argument(
        "--bucket-edges",
        nargs="+",
        type=int,
        default=None,
        metavar="TOKENS",
        help="prompt-length bucket edges (default: 512 1024 2048 4096 8192 16384)",
    )
    _common_node_args(p, skip={"repeats", "repeat_seed", "disable_radix_cache"})
    p.set_defaults(handler=_run_cache_benefit)


def _run_cache_benefit(args: argparse.Namespace) -> int:
    from .analysis.cache_benefit import DEFAULT_BUCKET_EDGES
    from .cli import _exit_code, _sim_defaults, build_config
    from .scenarios.cache_benefit import run_cache_benefit

    defaults = {**_sim_defaults(args), "output_dir": Path("results/cache_benefit"), **CACHE_BENEFIT_DEFAULTS}
    config = build_config(NodeConfig, args, defaults)
    if args.quiet:
        config.progress = False
    result = run_cache_benefit(config, args.bucket_edges or DEFAULT_BUCKET_EDGES)
    print(result.to_text())
    print(f"Cache benefit: {', '.join(str(p) for p in result.files.values())}")
    codes = [_exit_code(run.summary, expected_failures=False) for run in result.runs.values()]
    return max(codes, default=0)
