"""Router knobs that both router launchers pass the same way (sglang-router 0.3.2, :mod:`.argv`;
SMG 1.13, :mod:`.smg`): ``RouterConfig`` field → flag, each passed as ``flag str(value)``."""

from __future__ import annotations

from collections.abc import Sequence

from ..config.router_config import RouterConfig

__all__ = ["CACHE_AWARE_FLAGS", "HEALTH_FLAGS", "RETRY_BREAKER_FLAGS", "value_flags"]

CACHE_AWARE_FLAGS: tuple[tuple[str, str], ...] = (
    ("cache_threshold", "--cache-threshold"),
    ("balance_abs_threshold", "--balance-abs-threshold"),
    ("balance_rel_threshold", "--balance-rel-threshold"),
    ("eviction_interval_secs", "--eviction-interval-secs"),
    ("max_tree_size", "--max-tree-size"),
)
"""The cache-aware policy's knobs."""

HEALTH_FLAGS: tuple[tuple[str, str], ...] = (
    ("worker_startup_timeout_secs", "--worker-startup-timeout-secs"),
    ("worker_startup_check_interval", "--worker-startup-check-interval"),
    ("health_check_interval_secs", "--health-check-interval-secs"),
    ("health_check_timeout_secs", "--health-check-timeout-secs"),
    ("health_failure_threshold", "--health-failure-threshold"),
    ("health_success_threshold", "--health-success-threshold"),
)
"""Worker start-up and health checks."""

RETRY_BREAKER_FLAGS: tuple[tuple[str, str], ...] = (
    ("retry_max_retries", "--retry-max-retries"),
    ("retry_initial_backoff_ms", "--retry-initial-backoff-ms"),
    ("retry_max_backoff_ms", "--retry-max-backoff-ms"),
    ("retry_backoff_multiplier", "--retry-backoff-multiplier"),
    ("retry_jitter_factor", "--retry-jitter-factor"),
    ("cb_failure_threshold", "--cb-failure-threshold"),
    ("cb_success_threshold", "--cb-success-threshold"),
    ("cb_timeout_duration_secs", "--cb-timeout-duration-secs"),
    ("cb_window_duration_secs", "--cb-window-duration-secs"),
)
"""Retries and the circuit breaker."""


def value_flags(config: RouterConfig, flags: Sequence[tuple[str, str]]) -> list[str]:
    """``[flag, str(config.field), …]`` for each ``(field, flag)`` of ``flags``, in order."""
    return [arg for name, flag in flags for arg in (flag, str(getattr(config, name)))]
