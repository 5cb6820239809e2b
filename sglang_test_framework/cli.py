"""Command line: ``sglang-test <command>`` (also ``python -m sglang_test_framework``).

Commands only parse, build configs, run, print and set exit codes; the work happens in scenarios.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .cli_args import add_model_arguments, collect_model_values
from .config.base import format_validation_error, load_yaml_mapping
from .config.node_config import NodeConfig
from .errors import ConfigError, FrameworkError

__all__ = ["main"]

DEFAULT_SIM_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"

# bench_serving's flag names where they overlap with ours.
NODE_ALIASES: dict[str, list[str]] = {
    "model_path": ["--model"],
    "tokenizer_path": ["--tokenizer"],
    "name": ["--tag"],
}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with config fields; flags override it")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _node_parser(sub: Any) -> None:
    p = sub.add_parser("node", help="run a NodeTest: one server under a seeded workload")
    _add_common(p)
    p.add_argument("--output-file", type=Path, help="also write the one-line JSON summary here")
    p.add_argument("--disable-stream", action="store_false", dest="stream", default=argparse.SUPPRESS,
                   help="send non-streaming requests (bench_serving's flag)")
    p.add_argument("--disable-ignore-eos", action="store_false", dest="ignore_eos", default=argparse.SUPPRESS,
                   help="let the model stop at EOS (bench_serving's flag)")
    add_model_arguments(p, NodeConfig, "node test", NODE_ALIASES, skip={"stream", "ignore_eos"})
    p.set_defaults(handler=_run_node)


def build_config(model: type[Any], args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> Any:
    """YAML (``--config``) + flags → a validated config; errors name the field (exit code 2)."""
    values: dict[str, Any] = dict(defaults or {})
    source = "command line"
    if getattr(args, "config", None):
        values.update(load_yaml_mapping(args.config))
        source = f"{args.config} + command line"
    values.update(collect_model_values(args, model))
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{model.__name__} from {source}")) from exc


def _sim_defaults(args: argparse.Namespace) -> dict[str, Any]:
    backend = getattr(args, "backend", "sim")
    return {"model_path": DEFAULT_SIM_MODEL} if backend == "sim" else {}


def _run_node(args: argparse.Namespace) -> int:
    from .tests.node_test import NodeTest

    config = build_config(NodeConfig, args, _sim_defaults(args))
    if args.quiet:
        config.progress = False
    test = NodeTest(config, output_file=args.output_file)
    results = test.run()
    test.analyze_results(results)
    return 0 if results.summary.get("completed", 0) > 0 else 1


COMMANDS: list[Callable[[Any], None]] = [_node_parser]


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command."""
    parser = argparse.ArgumentParser(prog="sglang-test", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = make_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: processes stopped; records measured so far are in the output directory",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
