"""Command lines for SMG 1.13 (Shepherd Model Gateway, ``python -m smg.launch_router``): regular and
prefill/decode (PD) mode. Pure functions; :mod:`.router` launches them.

Every resilience knob (retries, circuit breaker, worker overload protection, gateway admission) is passed
explicitly, so a run's behaviour never depends on SMG's defaults changing, and the same values are
recorded in the results (``RouterConfig.resilience_settings``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.router_config import PREFILL_ONLY_POLICIES, SMG_POLICIES, RouterConfig
from ..errors import RouterError
from .router_flags import CACHE_AWARE_FLAGS, HEALTH_FLAGS, RETRY_BREAKER_FLAGS, value_flags

__all__ = ["SMG_MODULE", "PdWorkers", "smg_argv", "smg_pd_argv", "smg_policy_args"]

SMG_MODULE = "smg.launch_router"
"""The launcher module (``smg launch`` runs the same parser)."""


@dataclass(frozen=True)
class PdWorkers:
    """The workers of a PD deployment: prefill (URL, bootstrap port or None) and decode URLs."""

    prefill: tuple[tuple[str, int | None], ...]
    decode: tuple[str, ...]

    @property
    def urls(self) -> list[str]:
        """Every worker URL, prefill first."""
        return [url for url, _ in self.prefill] + list(self.decode)


def _check_policy(policy: str, role: str = "policy", allowed: Sequence[str] = SMG_POLICIES) -> None:
    if policy not in allowed:
        raise RouterError(f"{role} {policy!r} is not an SMG 1.13 policy; use one of {', '.join(allowed)}")


def smg_policy_args(config: RouterConfig) -> list[str]:
    """The knobs of every SMG policy (each is read only by its policy, so all are always passed)."""
    argv = [
        *value_flags(config, CACHE_AWARE_FLAGS),
        "--power-of-two-load-metric",
        config.power_of_two_load_metric,
        "--least-load-kv-pressure-weight",
        str(config.least_load_kv_pressure_weight),
        "--least-load-default-throughput",
        str(config.least_load_default_throughput),
        "--least-load-mean-prefill-tokens",
        str(config.least_load_mean_prefill_tokens),
        "--least-load-max-waiting-requests",
        str(config.least_load_max_waiting_requests),
        "--prefix-token-count",
        str(config.prefix_token_count),
        "--prefix-hash-load-factor",
        str(config.prefix_hash_load_factor),
        "--prefix-hash-balance-abs-threshold",
        str(config.prefix_hash_balance_abs_threshold),
        "--max-idle-secs",
        str(config.max_idle_secs),
        "--bucket-adjust-interval-secs",
        str(config.bucket_adjust_interval_secs),
        "--load-monitor-interval",
        str(config.load_monitor_interval),
    ]
    if config.assignment_mode is not None:
        argv += ["--assignment-mode", config.assignment_mode]
    if config.routing_key_override:
        argv.append("--routing-key-override")
    if config.routing_key_headers:
        argv += ["--routing-key-headers", *config.routing_key_headers]
    return argv


def _resilience_args(config: RouterConfig) -> list[str]:
    argv = [
        *value_flags(config, RETRY_BREAKER_FLAGS),
        "--max-concurrent-requests",
        str(config.max_concurrent_requests),
        "--queue-size",
        str(config.queue_size),
        "--queue-timeout-secs",
        str(config.queue_timeout_secs),
    ]
    if config.disable_retries:
        argv.append("--disable-retries")
    if config.disable_circuit_breaker:
        argv.append("--disable-circuit-breaker")
    if config.worker_overload_protection:
        argv += [
            "--worker-overload-waiting-requests",
            str(config.worker_overload_waiting_requests),
            "--worker-overload-token-usage",
            str(config.worker_overload_token_usage),
        ]
        if config.worker_overload_shed:
            argv.append("--worker-overload-shed")
    else:
        argv.append("--disable-worker-overload-protection")
    return argv


def _common_args(config: RouterConfig, port: int, prometheus_port: int) -> list[str]:
    argv = [
        "--host",
        config.host,
        "--port",
        str(port),
        "--prometheus-host",
        config.prometheus_host,
        "--prometheus-port",
        str(prometheus_port),
        *smg_policy_args(config),
        *value_flags(config, HEALTH_FLAGS),
        *_resilience_args(config),
        "--request-timeout-secs",
        str(config.request_timeout_secs),
        "--shutdown-grace-period-secs",
        str(config.shutdown_grace_period_secs),
        "--log-level",
        config.log_level,
    ]
    if config.api_key:
        argv += ["--api-key", config.api_key]
    return argv


def smg_argv(
    config: RouterConfig,
    policy: str,
    worker_urls: Sequence[str],
    port: int,
    prometheus_port: int,
    python: str = sys.executable,
) -> list[str]:
    """argv for SMG in regular mode: ``python -m smg.launch_router --worker-urls … --policy …`` plus
    every knob of ``config``.

    Raises:
        RouterError: ``policy`` is not an SMG policy, or there is no worker.
    """
    _check_policy(policy)
    if not worker_urls:
        raise RouterError("the router needs at least one worker URL")
    return [
        python,
        "-m",
        SMG_MODULE,
        "--worker-urls",
        *worker_urls,
        "--policy",
        policy,
        *_common_args(config, port, prometheus_port),
        *config.extra_args,
    ]


def smg_pd_argv(
    config: RouterConfig,
    workers: PdWorkers,
    port: int,
    prometheus_port: int,
    policy: str = "round_robin",
    python: str = sys.executable,
) -> list[str]:
    """argv for SMG in prefill/decode mode (``--pd-disaggregation``).

    Args:
        config: Router knobs; ``config.prefill_policy`` / ``config.decode_policy`` choose each leg's
            policy (``bucket`` only for prefill); unset, both follow ``policy``.
        workers: ``PdWorkers(prefill=((url, bootstrap_port | None), …), decode=(url, …))``; a None
            bootstrap port is passed as ``none`` (each prefill server then uses its own).
        port: Router HTTP port.
        prometheus_port: Router Prometheus port.
        policy: The main ``--policy`` (the fallback of both legs).
        python: Interpreter that has ``smg`` installed.

    Example: ``smg_pd_argv(RouterConfig(), PdWorkers((("http://127.0.0.1:31001", 8998),),
    ("http://127.0.0.1:31002",)), 30080, 29080)`` →
    ``[python, -m, smg.launch_router, --pd-disaggregation, --prefill, http://127.0.0.1:31001, 8998,
    --decode, http://127.0.0.1:31002, --policy, round_robin, …]``.

    Raises:
        RouterError: a policy SMG does not have for that leg, or no prefill or no decode worker.
    """
    _check_policy(policy)
    if not workers.prefill or not workers.decode:
        raise RouterError("PD mode needs at least one prefill and one decode worker")
    argv = [python, "-m", SMG_MODULE, "--pd-disaggregation"]
    for url, bootstrap_port in workers.prefill:
        argv += ["--prefill", url, "none" if bootstrap_port is None else str(bootstrap_port)]
    for url in workers.decode:
        argv += ["--decode", url]
    argv += ["--policy", policy]
    if config.prefill_policy is not None:
        _check_policy(config.prefill_policy, "prefill_policy", SMG_POLICIES + PREFILL_ONLY_POLICIES)
        argv += ["--prefill-policy", config.prefill_policy]
    if config.decode_policy is not None:
        _check_policy(config.decode_policy, "decode_policy")
        argv += ["--decode-policy", config.decode_policy]
    return argv + _common_args(config, port, prometheus_port) + config.extra_args
