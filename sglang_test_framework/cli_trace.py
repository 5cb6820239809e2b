"""``sglang-test trace stats FILE`` and ``sglang-test trace synth FILE --out OUT`` (docs/workloads.md)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["add_trace_parser"]

DEFAULT_CACHE_TOKENS = (100_000, 1_000_000, 10_000_000)
FORMATS = ("auto", "mooncake", "azure", "generic")


def _number(flag: str, low: float, high: float = math.inf, integer: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text}: not a{'n integer' if integer else ' number'}") from None
        if not (math.isfinite(value) and low <= value <= high):
            bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f"≥ {low:g}"
            raise argparse.ArgumentTypeError(f"{text}: must be a finite number {bound}")
        return value

    return parse


def _add_file_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="trace file: Mooncake JSONL, Azure CSV or generic JSONL/CSV")
    p.add_argument("--format", choices=FORMATS, default="auto", help="file format (default: detected)")
    p.add_argument(
        "--block-size", type=_number("--block-size", 1, integer=True), default=512, help="tokens per hash id"
    )


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_trace_parser(sub: Any) -> None:
    """Register ``trace stats`` and ``trace synth`` under the command subparsers ``sub``."""
    p = sub.add_parser("trace", help="trace tools: statistics and seeded what-if transforms")
    tsub = p.add_subparsers(dest="trace_command", required=True)
    s = tsub.add_parser("stats", help="rate, bursts, lengths and ideal prefix-cache hit rates of a trace")
    _verbose(s)
    _add_file_args(s)
    s.add_argument(
        "--cache-tokens",
        nargs="+",
        type=_number("--cache-tokens", 1),
        default=list(DEFAULT_CACHE_TOKENS),
        help="LRU prefix-cache sizes in tokens for the ideal hit rate (unlimited is always shown)",
    )
    s.add_argument("--speedup", type=_number("--speedup", 1e-9), default=1.0, help="as trace_speedup of a replay")
    s.add_argument("--start-s", type=_number("--start-s", 0), default=0.0, help="as trace_start_s")
    s.add_argument("--max-duration-s", type=_number("--max-duration-s", 1e-9), help="as trace_max_duration_s")
    s.add_argument("--rows", nargs=2, type=_number("--rows", 0, integer=True), metavar=("START", "END"))
    s.add_argument("--max-idle-gap-s", type=_number("--max-idle-gap-s", 0), help="as trace_max_idle_gap_s")
    s.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    s.set_defaults(handler=_run_stats)
    y = tsub.add_parser("synth", help="write a transformed copy of a trace (same format), seeded")
    _verbose(y)
    _add_file_args(y)
    y.add_argument("--out", type=Path, required=True, help="output file")
    y.add_argument("--rate-scale", type=_number("--rate-scale", 1e-6, 1e6), default=1.0, help="rate × X")
    y.add_argument("--length-scale", type=_number("--length-scale", 1e-6, 1e3), default=1.0, help="lengths × Y")
    y.add_argument(
        "--prefix-reuse",
        type=_number("--prefix-reuse", 0, 1),
        default=1.0,
        help="each row keeps its shared blocks with probability Z (1 = unchanged, 0 = no reuse)",
    )
    y.add_argument("--seed", type=_number("--seed", 0, 2**63 - 1, integer=True), default=0)
    y.set_defaults(handler=_run_synth)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _lengths(stats: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in stats.items())


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_stats(path: Path, fmt: str, block_size: int, st: dict[str, Any]) -> str:
    """The human-readable report of :func:`trace_stats`."""
    lines = [
        f"trace: {path} ({fmt}, {st['rows']} rows over {st['span_s']:.1f} s)",
        f"rate: mean {_rate(st['mean_rate'])} req/s; gap CV {_rate(st['gap_cv'])}",
    ]
    for w in ("1s", "10s"):
        if f"peak_rate_{w}" in st:
            lines.append(
                f"  {w} windows: peak {st[f'peak_rate_{w}']:.2f} req/s (aligned {st[f'peak_rate_{w}_aligned']:.2f}), "
                f"p99 {st[f'p99_rate_{w}']:.2f} req/s, empty {_pct(st[f'empty_share_{w}'])}, "
                f"dispersion {st[f'dispersion_{w}']:.2f} (var/mean of counts; 1 = Poisson)"
            )
    if st["input_tokens_per_s"] is not None:
        lines.append(
            f"token demand: {st['input_tokens_per_s']:,.0f} input tok/s, {st['output_tokens_per_s']:,.0f} output tok/s"
        )
    lines.append(f"input length (tokens): {_lengths(st['input_length'])}")
    lines.append(f"output length (tokens): {_lengths(st['output_length'])}")
    if st["hit_rate_infinite"] is None:
        lines.append("ideal prefix-cache hit rate: n/a (the trace records no shared prefixes)")
    else:
        lru = "; ".join(f"LRU {float(k):,.0f} tokens {_pct(v)}" for k, v in st["hit_rate_lru"].items())
        lines.append(
            f"ideal prefix-cache hit rate ({block_size}-token blocks): unlimited {_pct(st['hit_rate_infinite'])}"
        )
        if lru:
            lines.append(f"  {lru}")
    return "\n".join(lines)


def _run_stats(args: argparse.Namespace) -> int:
    from .load.trace_tools import trace_stats
    from .traces import TraceWindow, read_trace, select_rows

    trace = read_trace(args.file, args.format, int(args.block_size))
    start, end = (int(args.rows[0]), int(args.rows[1])) if args.rows else (0, None)
    if end is not None and end <= start:
        raise ConfigError(f"--rows {start} {end}: END must be greater than START")
    window = TraceWindow(args.speedup, args.start_s, args.max_duration_s, start, end, None, args.max_idle_gap_s)
    rows, offsets = select_rows(trace, window)
    if not rows:
        raise ConfigError("the selected window holds no rows; check --start-s, --max-duration-s and --rows")
    st = trace_stats(rows, offsets, trace.block_size, args.cache_tokens)
    print(json.dumps(st) if args.json else format_stats(args.file, trace.format, trace.block_size, st))
    return 0


def _run_synth(args: argparse.Namespace) -> int:
    from .load.trace_tools import synthesize, trace_stats, write_trace
    from .traces import read_trace

    if args.out.resolve() == args.file.resolve():
        raise ConfigError("--out: is the input file; write the transformed trace to a new file")
    trace = read_trace(args.file, args.format, int(args.block_size))
    shared = any(r.hash_ids or r.prefix_id is not None for r in trace.rows)
    if args.prefix_reuse != 1 and not shared:
        raise ConfigError(f"--prefix-reuse: {args.file} records no shared prefixes ({trace.format}); omit it")
    new = synthesize(trace, args.rate_scale, args.length_scale, args.prefix_reuse, int(args.seed))
    write_trace(new, args.out)
    before, after = (trace_stats(t.rows, [r.timestamp_ns / 1e9 for r in t.rows], t.block_size) for t in (trace, new))
    print(
        f"wrote {args.out}: {len(new.rows)} rows ({new.format}); mean rate {_rate(before['mean_rate'])} → "
        f"{_rate(after['mean_rate'])} req/s; mean input {before['input_length']['mean']:,.0f} → "
        f"{after['input_length']['mean']:,.0f} tokens; ideal hit rate {_pct(before['hit_rate_infinite'])} → "
        f"{_pct(after['hit_rate_infinite'])}"
    )
    return 0
