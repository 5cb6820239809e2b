"""Command-line flags of the simulator (SGLang's launch_server names plus ``--sim-*`` flags) → SimConfig.

Parsing is argparse's (unknown flags are an error, as in SGLang's parser); the values are then validated
by :class:`SimConfig`. Every error is one line naming the flag and the fix, exit code 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from .config import API_KEY_ENV, SimConfig, flag_of

__all__ = ["build_parser", "parse_config"]


_NOT_MODELLED = "accepted (SGLang's flag); does not change the simulation"


def _sglang_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-path", "--model", dest="model_path", required=True, help="picks the built-in model")
    p.add_argument("--tokenizer-path", help="reported by /model_info")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=30000)
    p.add_argument("--tp-size", "--tensor-parallel-size", dest="tp_size", type=int, default=1)
    p.add_argument("--dp-size", "--data-parallel-size", dest="dp_size", type=int, default=1, help="must be 1")
    p.add_argument("--max-running-requests", type=int)
    p.add_argument("--max-queued-requests", type=int, help="see --sim-queue-overflow")
    p.add_argument("--max-total-tokens", type=int, help="KV pool size (default: from GPU memory)")
    p.add_argument("--mem-fraction-static", type=float, help="share of GPU memory for weights + KV (default 0.88)")
    p.add_argument("--chunked-prefill-size", type=int, help="-1 disables chunking (default 8192)")
    p.add_argument("--max-prefill-tokens", type=int, default=16384)
    p.add_argument("--schedule-policy", default="fcfs", help="fcfs or lpm")
    p.add_argument("--schedule-conservativeness", type=float, default=1.0)
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})")
    p.add_argument("--served-model-name")
    p.add_argument("--context-length", type=int)
    p.add_argument("--random-seed", type=int, default=0)
    p.add_argument("--log-level", default="info")
    p.add_argument("--stream-interval", type=int, default=1, help="tokens per streamed chunk")
    p.add_argument("--hicache-ratio", type=float, default=2.0, help="host KV tier size ÷ device KV")
    p.add_argument("--page-size", type=int, default=1, help=_NOT_MODELLED)
    p.add_argument("--decode-log-interval", type=int, default=40, help=_NOT_MODELLED)
    p.add_argument("--dtype", default="auto", help=_NOT_MODELLED)
    p.add_argument("--load-format", default="auto", help=_NOT_MODELLED)
    p.add_argument("--base-gpu-id", type=int, default=0, help=_NOT_MODELLED)
    p.add_argument("--hicache-size", type=int, default=0, help=_NOT_MODELLED)
    p.add_argument("--hicache-write-policy", default="write_through", help=_NOT_MODELLED)
    p.add_argument("--hicache-io-backend", default="kernel", help=_NOT_MODELLED)
    p.add_argument("--hicache-mem-layout", default="page_first", help=_NOT_MODELLED)
    p.add_argument("--hicache-storage-backend", help=_NOT_MODELLED)
    p.add_argument(
        "--disaggregation-mode", default="null", help="null | prefill | decode (PD disaggregation, docs/pd.md)"
    )
    p.add_argument(
        "--disaggregation-bootstrap-port", type=int, default=8998, help="prefill: the bootstrap server's port"
    )
    p.add_argument("--disaggregation-transfer-backend", default="mooncake", help=_NOT_MODELLED)
    for names, help_text in (
        (("--disable-radix-cache",), "no prefix cache"),
        (("--enable-metrics",), "serve /metrics and report meta_info.queue_time"),
        (("--enable-cache-report",), "usage.prompt_tokens_details.cached_tokens in OpenAI responses"),
        (("--incremental-streaming-output",), "/generate streams deltas instead of cumulative text"),
        (("--stream-response-default-include-usage",), "OpenAI streams end with a usage chunk"),
        (("--enable-hierarchical-cache", "--enable-hicache"), "host-memory KV tier (HiCache)"),
        (("--enable-torch-compile",), _NOT_MODELLED),
        (("--skip-server-warmup",), _NOT_MODELLED),
        (("--enable-mixed-chunk",), _NOT_MODELLED),
        (("--disable-cuda-graph",), _NOT_MODELLED),
        (("--disable-overlap-schedule",), _NOT_MODELLED),
        (("--trust-remote-code",), _NOT_MODELLED),
    ):
        p.add_argument(*names, action="store_true", help=help_text)


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
    g.add_argument("--sim-kv-link-gbps", type=float, default=400.0, help="PD: KV link per GPU, Gbit/s")
    g.add_argument("--sim-kv-link-latency-ms", type=float, default=0.5, help="PD: fixed cost of one KV transfer")
    g.add_argument(
        "--sim-pd-bootstrap-timeout-s",
        type=float,
        default=300.0,
        help="PD prefill: wait this long for the decode's handshake (SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT)",
    )
    g.add_argument(
        "--sim-pd-waiting-timeout-s",
        type=float,
        default=300.0,
        help="PD decode: wait this long for the KV (SGLANG_DISAGGREGATION_WAITING_TIMEOUT)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every flag (its destinations are SimConfig's field names)."""
    p = argparse.ArgumentParser(
        prog="python -m sglang_test_framework.sim",
        usage="%(prog)s --model-path MODEL [flags] (see --help)",
        description="Simulated SGLang server (same HTTP API and flags; no GPU).",
    )
    _sglang_flags(p)
    _sim_flags(p)
    return p


def _describe(exc: ValidationError) -> str:
    """One line: ``--flag VALUE: what is wrong and the fix`` for each problem."""
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        shown = "" if field == "api_key" else f" {err['input']}"
        problems.append(f"{flag_of(field)}{shown}: {msg}")
    return "; ".join(problems)


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> SimConfig:
    """Parse ``argv`` into a validated SimConfig; on any error print it and exit with code 2.

    The API key comes from ``--api-key``, else from ``$SGLANG_SIM_API_KEY`` (so a launcher can keep it
    out of the process list); an empty value means no key.
    """
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    env = os.environ if environ is None else environ
    values["api_key"] = values["api_key"] or env.get(API_KEY_ENV) or None
    try:
        config = SimConfig(**values)
    except ValidationError as exc:
        parser.error(_describe(exc))
    try:
        config.latency_profile()
    except ValueError as exc:
        msg = str(exc)
        parser.error(msg if msg.startswith("--") else f"--sim-profile: {msg}")
    return config
