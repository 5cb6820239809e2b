"""Command lines for SGLang servers, the simulator and the SGLang router (pure functions)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..config.router_config import RouterConfig
from ..config.server_config import ServerConfig, ServerSettings
from .router_flags import CACHE_AWARE_FLAGS, HEALTH_FLAGS, RETRY_BREAKER_FLAGS, value_flags

__all__ = [
    "COVERAGE_RCFILE_NAME",
    "DEFAULT_COVERAGE_INCLUDE",
    "SIM_API_KEY_ENV",
    "coverage_include",
    "coverage_rc",
    "coverage_rcfile",
    "router_argv",
    "server_argv",
    "server_env",
]

SIM_API_KEY_ENV = "SGLANG_SIM_API_KEY"
"""Environment variable the simulator reads its API key from."""

# ServerConfig field → SGLang flag for value flags passed only when set (names per SGLang 0.5.23).
_VALUE_FLAGS: tuple[tuple[str, str], ...] = (
    ("max_running_requests", "--max-running-requests"),
    ("mem_fraction_static", "--mem-fraction-static"),
    ("chunked_prefill_size", "--chunked-prefill-size"),
    ("max_prefill_tokens", "--max-prefill-tokens"),
    ("max_queued_requests", "--max-queued-requests"),
    ("max_total_tokens", "--max-total-tokens"),
    ("schedule_policy", "--schedule-policy"),
    ("schedule_conservativeness", "--schedule-conservativeness"),
    ("served_model_name", "--served-model-name"),
    ("context_length", "--context-length"),
    ("random_seed", "--random-seed"),
    ("log_level", "--log-level"),
)
_BOOL_FLAGS: tuple[tuple[str, str], ...] = (
    ("enable_torch_compile", "--enable-torch-compile"),
    ("disable_radix_cache", "--disable-radix-cache"),
    ("enable_metrics", "--enable-metrics"),
    ("enable_cache_report", "--enable-cache-report"),
)


COVERAGE_RCFILE_NAME = ".coveragerc"
"""The coverage.py rc file every covered server of a run reads, inside the coverage directory."""

DEFAULT_COVERAGE_INCLUDE: dict[str, tuple[str, ...]] = {
    "sim": ("*/sglang_test_framework/sim/*",),
    "sglang": ("*/sglang/*",),
}
"""What coverage measures when ``coverage_include`` is empty: the launched server's own package."""


def coverage_include(config: ServerSettings) -> list[str]:
    """The file globs coverage measures: ``coverage_include``, else the server's package."""
    return list(config.coverage_include) or list(DEFAULT_COVERAGE_INCLUDE.get(config.backend, ()))


def coverage_rcfile(coverage_dir: Path) -> Path:
    """The rc file of a coverage directory (absolute: the servers' subprocesses read it too)."""
    return Path(os.path.abspath(coverage_dir)) / COVERAGE_RCFILE_NAME


def _rc_value(text: str) -> str:
    return text.replace("$", "$$")  # coverage.py expands $VAR in rc values; $$ is a literal dollar


def coverage_rc(config: ServerSettings, coverage_dir: Path) -> str:
    """Text of the coverage.py rc file for the servers of one run.

    Each process writes its own data file into ``coverage_dir`` (``parallel``), also when stopped with
    SIGTERM (``sigterm``); ``multiprocessing`` makes SGLang's scheduler and detokenizer subprocesses
    measure themselves too.
    """
    data_file = Path(os.path.abspath(coverage_dir)) / ".coverage"
    include = "".join(f"\n    {_rc_value(pattern)}" for pattern in coverage_include(config))
    return (
        "# Written by sglang_test_framework: how the servers of this run measure their coverage.\n"
        "[run]\n"
        f"data_file = {_rc_value(str(data_file))}\n"
        "parallel = True\n"
        "sigterm = True\n"
        "concurrency = multiprocessing, thread\n"
        f"include ={include}\n"
    )


def server_argv(config: ServerConfig, port: int, python: str = sys.executable) -> list[str]:
    """argv for one server: ``python -m sglang.launch_server …`` or the simulator with the same flags.

    Always passes ``--model-path --host --port --tp-size``; other flags only when set. With
    ``coverage`` the module runs under ``python -m coverage run --rcfile=<coverage_dir>/.coveragerc``
    (the rc file from :func:`coverage_rc` must exist before the server starts).
    """
    module = "sglang.launch_server" if config.backend == "sglang" else "sglang_test_framework.sim"
    launcher = [python, "-m", module]
    if config.coverage:
        rcfile = coverage_rcfile(config.coverage_dir or Path("coverage"))
        launcher = [python, "-m", "coverage", "run", f"--rcfile={rcfile}", "-m", module]
    argv = [
        *launcher,
        "--model-path",
        config.model_path,
        "--host",
        config.host,
        "--port",
        str(port),
        "--tp-size",
        str(config.tp_size),
    ]
    for field, flag in _VALUE_FLAGS:
        value = getattr(config, field)
        if value is not None:
            argv += [flag, str(value)]
    if config.api_key and config.backend == "sglang":
        argv += ["--api-key", config.api_key]  # SGLang reads its key only from argv; the sim from its env
    for field, flag in _BOOL_FLAGS:
        if getattr(config, field):
            argv.append(flag)
    if config.backend == "sim":
        if config.sim_profile:
            argv += ["--sim-profile", config.sim_profile]
        if config.sim_ground_truth_log:
            argv += ["--sim-ground-truth-log", str(config.sim_ground_truth_log)]
        argv += ["--sim-worker-id", config.server_id or f"{config.host}:{port}"]
        argv += config.sim_args
    argv += config.extra_args
    return argv


def server_env(config: ServerConfig, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a server: ``CUDA_VISIBLE_DEVICES`` = gpu_id … gpu_id+tp_size−1 (sglang backend);
    the simulator's API key (``SGLANG_SIM_API_KEY``)."""
    env = dict(os.environ if base is None else base)
    if config.backend == "sglang":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in config.gpu_ids)
    env["PYTHONUNBUFFERED"] = "1"
    if config.api_key and config.backend == "sim":
        env[SIM_API_KEY_ENV] = config.api_key  # not in argv, so not visible in `ps`
    env.update(config.env)
    return env


def router_argv(
    config: RouterConfig,
    policy: str,
    worker_urls: Sequence[str],
    port: int,
    prometheus_port: int,
    python: str = sys.executable,
) -> list[str]:
    """argv for ``python -m sglang_router.launch_router`` (flag names of sglang-router 0.3.2)."""
    argv = [
        python,
        "-m",
        "sglang_router.launch_router",
        "--host",
        config.host,
        "--port",
        str(port),
        "--worker-urls",
        *worker_urls,
        "--policy",
        policy,
        "--prometheus-host",
        config.prometheus_host,
        "--prometheus-port",
        str(prometheus_port),
        *value_flags(config, CACHE_AWARE_FLAGS),
        *value_flags(config, HEALTH_FLAGS),
        *value_flags(config, RETRY_BREAKER_FLAGS),
        "--request-timeout-secs",
        str(config.request_timeout_secs),
        "--log-level",
        config.log_level,
    ]
    if config.disable_retries:
        argv.append("--disable-retries")
    if config.disable_circuit_breaker:
        argv.append("--disable-circuit-breaker")
    if config.api_key:
        argv += ["--api-key", config.api_key]
    argv += config.extra_args
    return argv
