"""Command-line flags of the simulator: SGLang's launch_server names plus ``--sim-*`` flags."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["parse_args"]


def _bool(p: argparse.ArgumentParser, *names: str, help_text: str = "accepted for compatibility") -> None:
    p.add_argument(*names, action="store_true", help=help_text)


def _sglang_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-path", "--model", dest="model_path", required=True)
    p.add_argument("--tokenizer-path")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=30000)
    p.add_argument("--tp-size", "--tensor-parallel-size", dest="tp_size", type=int, default=1)
    p.add_argument("--dp-size", "--data-parallel-size", dest="dp_size", type=int, default=1)
    p.add_argument("--max-running-requests", type=int)
    p.add_argument("--max-queued-requests", type=int)
    p.add_argument("--max-total-tokens", type=int)
    p.add_argument("--mem-fraction-static", type=float)
    p.add_argument("--chunked-prefill-size", type=int)
    p.add_argument("--max-prefill-tokens", type=int, default=16384)
    p.add_argument("--schedule-policy", default="fcfs")
    p.add_argument("--schedule-conservativeness", type=float, default=1.0)
    p.add_argument("--api-key")
    p.add_argument("--served-model-name")
    p.add_argument("--context-length", type=int)
    p.add_argument("--random-seed", type=int, default=0)
    p.add_argument("--log-level", default="info")
    p.add_argument("--stream-interval", type=int, default=1)
    p.add_argument("--page-size", type=int, default=1)
    p.add_argument("--decode-log-interval", type=int, default=40)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--load-format", default="auto")
    p.add_argument("--base-gpu-id", type=int, default=0)
    p.add_argument("--hicache-ratio", type=float, default=2.0)
    p.add_argument("--hicache-size", type=int, default=0)
    p.add_argument("--hicache-write-policy", default="write_through")
    p.add_argument("--hicache-io-backend", default="kernel")
    p.add_argument("--hicache-mem-layout", default="page_first")
    p.add_argument("--hicache-storage-backend")
    for flag in (
        "--enable-torch-compile",
        "--disable-radix-cache",
        "--enable-metrics",
        "--enable-cache-report",
        "--skip-server-warmup",
        "--enable-mixed-chunk",
        "--disable-cuda-graph",
        "--disable-overlap-schedule",
        "--trust-remote-code",
        "--incremental-streaming-output",
        "--stream-response-default-include-usage",
    ):
        _bool(p, flag)
    _bool(p, "--enable-hierarchical-cache", "--enable-hicache")


def _sim_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulator (--sim-*)")
    g.add_argument("--sim-profile", help="MODEL@GPU (e.g. Llama-3-8B@H100-SXM) or a YAML profile file")
    g.add_argument("--sim-gpu", default="H100-SXM", help="GPU of the built-in profiles")
    g.add_argument("--sim-jitter-cv", type=float, default=0.05, help="lognormal step-time jitter (CV)")
    g.add_argument("--sim-ground-truth-log", help="JSONL file: one line of true timings per request")
    g.add_argument("--sim-worker-id", help="value of the X-Worker-Id response header (default host:port)")
    g.add_argument("--sim-get-load-format", choices=["list", "legacy", "absent"], default="list")
    g.add_argument("--sim-queue-overflow", choices=["unbounded", "429", "503"], default="503")
    g.add_argument("--sim-startup-delay-s", type=float, default=0.0)
    g.add_argument("--sim-fail-first-n", type=int, default=0)
    g.add_argument("--sim-fail-rate", type=float, default=0.0)
    g.add_argument("--sim-fail-status", type=int, default=500)
    g.add_argument("--sim-hang-after-n", type=int, help="requests after the Nth are accepted but never answered")
    g.add_argument("--sim-crash-after-requests", type=int, help="exit(1) when the Nth request arrives")
    g.add_argument("--sim-crash-after-s", type=float, help="exit(1) this many seconds after becoming ready")
    g.add_argument("--sim-health-fail-after-s", type=float, help="/health* answer 503 after this many seconds")
    g.add_argument("--sim-slowdown", type=float, default=1.0, help="multiply every step time")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check flags; errors exit with code 2 and name the flag (like SGLang's parser)."""
    p = argparse.ArgumentParser(
        prog="python -m sglang_test_framework.sim",
        description="Simulated SGLang server (same HTTP API and flags; no GPU).",
    )
    _sglang_flags(p)
    _sim_flags(p)
    args = p.parse_args(argv)
    if args.dp_size != 1:
        p.error("--dp-size: the simulator runs one data-parallel rank; launch several servers instead")
    if args.schedule_policy not in ("fcfs", "lpm"):
        p.error(f"--schedule-policy {args.schedule_policy}: the simulator implements fcfs and lpm")
    if args.mem_fraction_static is not None and not 0 < args.mem_fraction_static < 1:
        p.error("--mem-fraction-static must be in (0, 1)")
    if args.sim_fail_rate and not 0 <= args.sim_fail_rate <= 1:
        p.error("--sim-fail-rate must be in [0, 1]")
    if args.sim_slowdown <= 0:
        p.error("--sim-slowdown must be > 0")
    return args
