"""Command line: ``sglang-test <command>`` (also ``python -m sglang_test_framework``).

Commands only parse, build configs, run, print and set exit codes; the work happens in scenarios.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .cli_args import add_model_arguments, collect_model_values
from .cli_pd import add_pd_compare_parser
from .cli_policy_study import add_policy_study_parser
from .cli_routing import routing_config_from_args
from .cli_stress import add_cache_benefit_parser, add_stress_parser
from .cli_trace import add_trace_parser
from .config.base import format_validation_error, load_yaml_mapping
from .config.node_config import NodeConfig
from .config.router_config import RouterConfig
from .config.routing_config import RoutingConfig
from .errors import ConfigError, DatasetError, FrameworkError, RunInterrupted

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
    p.add_argument(
        "--disable-stream",
        action="store_false",
        dest="stream",
        default=argparse.SUPPRESS,
        help="send non-streaming requests (bench_serving's flag)",
    )
    p.add_argument(
        "--disable-ignore-eos",
        action="store_false",
        dest="ignore_eos",
        default=argparse.SUPPRESS,
        help="let the model stop at EOS (bench_serving's flag)",
    )
    add_model_arguments(p, NodeConfig, "node test", NODE_ALIASES, skip={"stream", "ignore_eos"})
    p.set_defaults(handler=_run_node)


def build_config(model: type[Any], args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> Any:
    """YAML (``--config``) + flags → a validated config; errors name the field (exit code 2)."""
    values: dict[str, Any] = dict(defaults or {})
    source = "command line"
    if getattr(args, "config", None):
        values.update(load_yaml_mapping(args.config))
        source = f"{args.config} + command line"
    return model.from_mapping(values, f"{model.__name__} from {source}", **collect_model_values(args, model))


def _sim_defaults(args: argparse.Namespace) -> dict[str, Any]:
    backend = getattr(args, "backend", "sim")
    return {"model_path": DEFAULT_SIM_MODEL} if backend == "sim" else {}


def _run_node(args: argparse.Namespace) -> int:
    from .scenarios.node import NodeTest

    config = build_config(NodeConfig, args, _sim_defaults(args))
    if args.quiet:
        config.progress = False
    test = NodeTest(config, output_file=args.output_file)
    results = _run_reporting_partial(test.run, test.analyze_results)
    test.analyze_results(results)
    return _exit_code(results.summary, expected_failures=False)


def _routing_parser(sub: Any) -> None:
    p = sub.add_parser("routing", help="run a RoutingTest (workers behind a router); --policies compares")
    _add_common(p)
    p.add_argument("--output-file", type=Path, help="also write the one-line JSON summary here")
    p.add_argument("--policies", nargs="+", help="compare these policies on the same seeded workload")
    add_model_arguments(p, RoutingConfig, "routing test", {**NODE_ALIASES, "extra_args": ["--server-extra-args"]})
    add_model_arguments(p, RouterConfig, "router (--router-*)", prefix="router_")
    p.set_defaults(handler=_run_routing)


def _run_routing(args: argparse.Namespace) -> int:
    from .scenarios.routing import RoutingTest

    config = routing_config_from_args(args, _sim_defaults(args))
    if args.policies:
        comparison = RoutingTest.compare(config, args.policies)
        print(comparison.to_text())
        print(f"Comparison: {', '.join(str(p) for p in comparison.files.values())}")
        return 0
    test = RoutingTest(config, output_file=args.output_file)
    results = _run_reporting_partial(test.run, _print_routing)
    _print_routing(results)
    paths = test.visualize_results(results)
    print(f"Plots: {', '.join(str(p) for p in paths)}")
    return _exit_code(results.summary, expected_failures=bool(config.failure_schedule))


def _print_routing(results: Any) -> None:
    from .results import RepeatedRunResults

    if isinstance(results, RepeatedRunResults):
        from .analysis.repeats import format_repeats_report

        print(format_repeats_report(results.summary, results.context))
        print(f"Results: {results.output_dir} (one directory per repeat: rep-0 …)")
        return
    from .analysis.metric_text import metric_rows_text, routing_summary_lines

    if results.per_worker is not None:
        print(metric_rows_text(results.per_worker))
    print("\n".join(routing_summary_lines(results.summary)))
    if results.summary.get("per_workload"):
        from .analysis.workload_breakdown import format_workload_table

        print(format_workload_table(results.summary["per_workload"]))
    if results.summary.get("pd"):
        from .scenarios.pd_comparison import pd_summary_text

        print(pd_summary_text(results.summary["pd"]))
    print(f"Results: {results.output_dir}")


def _run_reporting_partial(run: Callable[[], Any], report: Callable[[Any], object]) -> Any:
    """Run a scenario; if a signal stops it, print the partial report and re-raise."""
    try:
        return run()
    except RunInterrupted as exc:
        if exc.results is not None:
            report(exc.results)
        raise


def _exit_code(summary: dict[str, Any], expected_failures: bool) -> int:
    """0 when every request succeeded and no server died; 1 otherwise, with the reason on stderr.

    Failed requests are expected (and do not fail the command) when the run injected failures itself.
    """
    problems: list[str] = []
    for exit_ in summary.get("server_exits") or []:
        problems.append(f"{exit_['name']} exited during the run with code {exit_['exit_code']}")
    counts = summary.get("run_totals") or summary  # the whole run, also outside a measurement window
    failed = int(counts.get("failed") or 0)
    if failed and not expected_failures:
        problems.append(f"{failed} of {counts.get('total_requests')} requests failed {counts.get('errors_by_type')}")
    if not counts.get("completed"):
        problems.append("no request completed")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _parse_grid(items: Sequence[str], backend: str) -> dict[str, list[Any]]:
    """``key=v1,v2`` items → the sweep grid. Keys are NodeConfig fields or raw server flags (with or
    without leading dashes); every key is checked before anything runs (sim flags against the sim)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not raw or not key:
            raise ConfigError(f"--grid {item!r}: use key=v1,v2,... (e.g. max_running_requests=32,64,128)")
        if key not in NodeConfig.model_fields:
            key = _raw_flag(key, backend)
        grid[key] = [_scalar(v) for v in raw.split(",") if v.strip()]
    return grid


def _raw_flag(key: str, backend: str) -> str:
    """A grid key that is not a config field, as a server flag (``--page-size``); unknown ones fail."""
    flag = key if key.startswith("--") else "--" + key
    hint = difflib.get_close_matches(key.lstrip("-").replace("-", "_"), list(NodeConfig.model_fields), n=1)
    if "_" in flag:  # SGLang's flags use dashes: an underscore name must be one of our fields
        raise ConfigError(
            f"--grid {key}: not a config field{f'; did you mean {hint[0]}?' if hint else ''} "
            "(raw server flags are written with dashes, e.g. page-size=1,64)"
        )
    if backend == "sim":
        from .sim.args import build_parser

        known = {opt for action in build_parser()._actions for opt in action.option_strings}
        if flag not in known:
            close = difflib.get_close_matches(flag, sorted(known), n=1)
            raise ConfigError(
                f"--grid {key}: the simulated server has no flag {flag}"
                f"{f'; did you mean {close[0]}?' if close else ''} (see python -m sglang_test_framework.sim --help)"
            )
    return flag


def _scalar(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(text.lower(), text)


def _sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a NodeTest per grid point; rerun resumes (finished points are skipped)")
    _add_common(p)
    p.add_argument(
        "--grid",
        nargs="+",
        required=True,
        metavar="KEY=V1,V2",
        help="config field or raw server flag (--page-size=1,64) and its values",
    )
    p.add_argument("--request-rates", nargs="+", type=float, help="shorthand for --grid request_rate=...")
    p.add_argument(
        "--repeats", type=int, default=1, help="runs per point; the table shows their mean ± 95%% CI (default: 1)"
    )
    p.add_argument(
        "--sweep-dir",
        type=Path,
        default=Path("results/sweep"),
        help="the sweep's own directory: rerunning the same sweep resumes it; a different sweep there is moved aside",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume the sweep in --sweep-dir, refusing (and naming the fields) if its settings differ",
    )
    add_model_arguments(p, NodeConfig, "base node config", NODE_ALIASES, skip={"output_dir", "repeats"})
    p.set_defaults(handler=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from .config.sweep_config import SweepConfig

    base = build_config(NodeConfig, args, _sim_defaults(args))
    grid = _parse_grid(args.grid, base.backend)
    if args.request_rates:
        grid["request_rate"] = list(args.request_rates)
    if args.quiet:
        base.progress = False
    sweep = SweepConfig.build(source="sweep", base=base, grid=grid, repeats=args.repeats, output_dir=args.sweep_dir)
    from .scenarios.sweep import run_sweep  # after validation: a bad grid key fails fast

    result = run_sweep(sweep, resume=args.resume)
    print(result.to_text())
    print(f"ran {len(result.ran)}, skipped {len(result.skipped)} finished, failed {len(result.failed)}")
    for name, why in result.failed.items():
        print(f"  failed: {name}: {why}")
    print(f"Sweep: {', '.join(str(p) for p in result.files.values())}")
    return 1 if result.failed else 0


def _compare_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare result files side by side (speedups with significance, CI, plots)")
    p.add_argument(
        "files",
        nargs="+",
        type=Path,
        help="summary JSON files (ours or bench_serving's JSONL) or run directories; a run made with --repeats "
        "counts as its repeated runs",
    )
    p.add_argument("--labels", nargs="+", help="one label per file or directory (same label = repeated runs)")
    p.add_argument("--baseline", type=int, default=0, help="index of the baseline file or directory")
    p.add_argument("--output-dir", type=Path, default=Path("results/comparison"))
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from .analysis.compare import compare_results
    from .analysis.html_pages import REPORT_FILE, comparison_report_html, write_report

    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        raise ConfigError(f"files: not found: {', '.join(missing)}")
    result = compare_results(args.files, labels=args.labels, baseline=args.baseline)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(result.to_text())
    table_path = args.output_dir / "comparison.csv"
    result.table.to_csv(table_path)
    (args.output_dir / "comparison.md").write_text(result.to_markdown() + "\n")
    png = result.save_plot(args.output_dir / "comparison.png")
    report = write_report(args.output_dir / REPORT_FILE, comparison_report_html(result, [png]))
    print(f"Comparison: {table_path}, {args.output_dir / 'comparison.md'}, {png}, {report}")
    return 0


def _soak_parser(sub: Any) -> None:
    p = sub.add_parser("soak", help="run for --duration-s with server memory sampled; flags a leak trend")
    _add_common(p)
    add_model_arguments(p, NodeConfig, "node config", NODE_ALIASES, skip={"repeats", "repeat_seed"})
    p.set_defaults(handler=_run_soak)


def _run_soak(args: argparse.Namespace) -> int:
    from .scenarios.soak import run_soak

    config = build_config(NodeConfig, args, _sim_defaults(args))
    if config.duration_s is None:
        raise ConfigError("--duration-s: a soak run needs a duration, e.g. --duration-s 600 --request-rate 5")
    if args.quiet:
        config.progress = False
    soak = run_soak(config)
    from .scenarios.node import NodeTest

    NodeTest(config).analyze_results(soak.results)
    print(soak.to_text())
    return 3 if soak.leak_suspected else 0


def _slo_parser(sub: Any) -> None:
    from .config.search_config import SLOSearchConfig

    p = sub.add_parser("slo-search", help="find the highest request rate that meets SLOs at steady state")
    _add_common(p)
    p.add_argument(
        "--goodput",
        nargs="+",
        required=True,
        metavar="KEY:MS",
        help="SLOs like bench_serving: ttft:500 tpot:50 e2el:3000",
    )
    p.add_argument(
        "--search-dir",
        type=Path,
        default=Path("results/slo_search"),
        help="the search's own directory (an earlier run there is moved aside); one directory per probe in it",
    )
    add_model_arguments(p, SLOSearchConfig, "search (each probe: ≥ min-duration-s and ≥ min-requests)", skip=_SERIES)
    add_model_arguments(p, NodeConfig, "node config", NODE_ALIASES, skip={"repeats", "repeat_seed", "output_dir"})
    p.set_defaults(handler=_run_slo)


_SERIES = {"slos_ms", "output_dir"}
"""Search/sweep fields that are not flags of their own (``--goodput``, ``--search-dir``/``--sweep-dir``)."""


def _run_slo(args: argparse.Namespace) -> int:
    from .config.search_config import SLOSearchConfig
    from .scenarios.slo_search import RESULT_FILE, find_max_rate

    slos: dict[str, float] = {}
    for item in args.goodput:
        key, _, ms = item.partition(":")
        try:
            slos[key] = float(ms)
        except ValueError as exc:
            raise ConfigError(f"--goodput {item!r}: use key:milliseconds, e.g. ttft:500") from exc
    config = build_config(NodeConfig, args, _sim_defaults(args))
    if args.quiet:
        config.progress = False
    values = collect_model_values(args, SLOSearchConfig)
    search = SLOSearchConfig.build("slo-search flags", slos_ms=slos, output_dir=args.search_dir, **values)
    result = find_max_rate(config, slos, search=search)
    print(result.to_text())
    print(f"Search: {search.output_dir} ({RESULT_FILE}; one run directory per probe under probes/)")
    return 0


def _saturate_parser(sub: Any) -> None:
    from .config.search_config import SaturationSweepConfig

    p = sub.add_parser("saturate", help="sweep from a low rate up to saturation; the throughput-latency knee")
    _add_common(p)
    p.add_argument(
        "--sweep-dir",
        type=Path,
        default=Path("results/saturation"),
        help="the sweep's own directory (an earlier run there is moved aside); one directory per probe in it",
    )
    add_model_arguments(p, SaturationSweepConfig, "saturation sweep", skip=_SERIES)
    add_model_arguments(p, NodeConfig, "node config", NODE_ALIASES, skip={"repeats", "repeat_seed", "output_dir"})
    p.set_defaults(handler=_run_saturate)


def _run_saturate(args: argparse.Namespace) -> int:
    from .config.search_config import SaturationSweepConfig
    from .scenarios.saturation import run_saturation_sweep

    config = build_config(NodeConfig, args, _sim_defaults(args))
    if args.quiet:
        config.progress = False
    values = collect_model_values(args, SaturationSweepConfig)
    sweep = SaturationSweepConfig.build("saturate flags", output_dir=args.sweep_dir, **values)
    result = run_saturation_sweep(config, sweep)
    print(result.to_text())
    print(f"Sweep: {', '.join(str(p) for p in result.files.values())}")
    return 0 if result.knee_index is not None else 1


COMMANDS: list[Callable[[Any], None]] = [
    _node_parser,
    _routing_parser,
    _sweep_parser,
    _compare_parser,
    _soak_parser,
    _slo_parser,
    _saturate_parser,
    add_stress_parser,
    add_cache_benefit_parser,
    add_trace_parser,
    add_policy_study_parser,
    add_pd_compare_parser,
]


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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except RunInterrupted as exc:
        print(
            f"{exc}: every process we started was stopped; the partial results (status 'interrupted') and every "
            "record measured so far are in the output directory",
            file=sys.stderr,
        )
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: every process we started was stopped", file=sys.stderr)
        return 130
    except (ConfigError, DatasetError, ValidationError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (FrameworkError, OSError, RuntimeError) as exc:
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        print(f"error: {_one_line(exc)} (run with -v for details)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (pydantic's multi-line messages folded)."""
    if isinstance(exc, ValidationError):
        return format_validation_error(exc, "config")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, FrameworkError) else f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    raise SystemExit(main())
