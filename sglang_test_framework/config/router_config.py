"""RouterConfig: the knobs of SMG (``smg launch``), of ``sglang_router.launch_router`` and of our Python
router."""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import Field, field_validator

from .secrets import ApiKeyConfig

__all__ = [
    "PREFILL_ONLY_POLICIES",
    "ROUTER_IMPLEMENTATIONS",
    "SGLANG_ROUTER_POLICIES",
    "SMG_POLICIES",
    "RouterConfig",
    "RouterImplementation",
    "default_implementation",
    "real_router_policies",
]

_DAY_S = 86_400

RouterImplementation = Literal["smg", "sglang-router", "python"]
ROUTER_IMPLEMENTATIONS: tuple[str, ...] = ("smg", "sglang-router", "python")

SMG_POLICIES: tuple[str, ...] = (
    "random",
    "round_robin",
    "passthrough",
    "cache_aware",
    "power_of_two",
    "least_load",
    "manual",
    "consistent_hashing",
    "prefix_hash",
)
"""Every ``--policy`` of SMG 1.13 (``bucket`` is a prefill-only policy: :data:`PREFILL_ONLY_POLICIES`)."""

PREFILL_ONLY_POLICIES: tuple[str, ...] = ("bucket",)
"""SMG policies accepted only as ``prefill_policy`` in PD mode."""

SGLANG_ROUTER_POLICIES: tuple[str, ...] = ("cache_aware", "round_robin", "random", "power_of_two")
"""The policies of sglang-router 0.3.2."""


def default_implementation() -> RouterImplementation:
    """``smg`` when the ``smg`` package is importable, else ``sglang-router``."""
    return "smg" if importlib.util.find_spec("smg") is not None else "sglang-router"


def real_router_policies(implementation: str) -> tuple[str, ...]:
    """The policies the real router of ``implementation`` runs (() for ``python``)."""
    if implementation == "smg":
        return SMG_POLICIES
    if implementation == "sglang-router":
        return SGLANG_ROUTER_POLICIES
    return ()


class RouterConfig(ApiKeyConfig):
    """Router settings. Shared knobs keep the names and defaults of SMG 1.13 / sglang-router 0.3.2
    except where noted.

    ``implementation`` picks the router: ``smg`` (SMG 1.13, ``smg launch``; the default when installed),
    ``sglang-router`` (the 0.3.2 package, four policies) or ``python`` (our in-process proxy). The
    cache-aware knobs (``cache_threshold``, ``balance_abs_threshold``, ``balance_rel_threshold``,
    ``eviction_interval_secs``, ``max_tree_size``) configure the real routers and our Python
    ``cache_aware`` policy alike.

    Resilience is always passed explicitly to SMG (it changes what a policy comparison measures) and
    recorded in the results (:meth:`resilience_settings`): retries (``retry_*``, ``disable_retries``),
    the circuit breaker (``cb_*``, ``disable_circuit_breaker``), worker overload protection
    (``worker_overload_*``) and gateway admission (``max_concurrent_requests``, ``queue_size``).

    ``port`` and ``prometheus_port`` default to 0 (pick a free port) because the routers' own defaults
    (30000 and 29000) collide with a worker's default port. ``worker_startup_check_interval`` defaults to
    2 s (router default 30 s) because in sglang-router it is also the period of the power_of_two
    ``/get_load`` poll; ``load_monitor_interval`` (SMG's ``/v1/loads`` poll) defaults to 1 s (SMG: 10 s)
    so load-aware policies see fresh loads in short tests. ``health_check_interval_secs`` defaults to
    5 s (router default 60 s) so a killed worker is noticed within a test run. The API key comes from
    ``api_key``, ``api_key_file`` or ``$SGLANG_TEST_API_KEY`` and is never dumped.
    """

    implementation: RouterImplementation | None = Field(
        default=None, description="smg | sglang-router | python (default: smg when installed, else sglang-router)"
    )
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=0, ge=0, le=65535)
    prometheus_host: str = Field(default="127.0.0.1", min_length=1)
    prometheus_port: int = Field(default=0, ge=0, le=65535)
    # --- cache_aware
    cache_threshold: float = Field(default=0.3, ge=0, le=1)
    balance_abs_threshold: int = Field(default=64, ge=0, le=1_000_000_000)
    balance_rel_threshold: float = Field(default=1.5, ge=1, le=1_000_000)
    eviction_interval_secs: int = Field(default=60, gt=0, le=_DAY_S)
    max_tree_size: int = Field(default=67108864, gt=0, le=2**40, description="characters per worker tree")
    # --- SMG policies' knobs
    power_of_two_load_metric: Literal["expected_wait", "requests", "least_requests"] = "expected_wait"
    least_load_kv_pressure_weight: float = Field(default=0.15, ge=0, le=1000)
    least_load_default_throughput: float = Field(default=2000.0, gt=0, le=1e9)
    least_load_mean_prefill_tokens: int = Field(default=1024, gt=0, le=10_000_000)
    least_load_max_waiting_requests: int = Field(default=0, ge=0, le=1_000_000)
    prefix_token_count: int = Field(default=256, gt=0, le=1_000_000, description="prefix_hash: tokens hashed")
    prefix_hash_load_factor: float = Field(default=1.25, ge=1, le=1000)
    prefix_hash_balance_abs_threshold: int = Field(default=10, ge=0, le=1_000_000)
    max_idle_secs: int = Field(default=14400, gt=0, le=30 * _DAY_S, description="manual: sticky key idle expiry")
    assignment_mode: Literal["random", "min_load", "min_group", "delegate"] | None = Field(
        default=None, description="manual / routing_key_override: how new keys are assigned (SMG default)"
    )
    routing_key_override: bool = Field(default=False, description="SMG: sticky routing keys on top of any policy")
    routing_key_headers: list[str] = Field(default_factory=list, description="SMG: headers read for the routing key")
    bucket_adjust_interval_secs: int = Field(default=5, gt=0, le=_DAY_S, description="PD bucket prefill policy")
    prefill_policy: str | None = Field(default=None, description="PD: policy for prefill workers (default: policy)")
    decode_policy: str | None = Field(default=None, description="PD: policy for decode workers (default: policy)")
    load_monitor_interval: int = Field(default=1, gt=0, le=3600, description="SMG: /v1/loads poll period")
    # --- worker lifecycle
    worker_startup_timeout_secs: int = Field(default=600, gt=0, le=_DAY_S)
    worker_startup_check_interval: int = Field(default=2, gt=0, le=3600)
    health_check_interval_secs: int = Field(default=5, gt=0, le=_DAY_S)
    health_check_timeout_secs: int = Field(default=5, gt=0, le=3600)
    health_failure_threshold: int = Field(default=3, gt=0, le=1000)
    health_success_threshold: int = Field(default=2, gt=0, le=1000)
    # --- retries
    retry_max_retries: int = Field(default=5, ge=0, le=100, description="total attempts (SMG and sglang-router)")
    retry_initial_backoff_ms: int = Field(default=50, ge=0, le=3_600_000)
    retry_max_backoff_ms: int = Field(default=30000, ge=0, le=3_600_000)
    retry_backoff_multiplier: float = Field(default=1.5, ge=1, le=100)
    retry_jitter_factor: float = Field(default=0.2, ge=0, le=1)
    disable_retries: bool = False
    # --- circuit breaker
    cb_failure_threshold: int = Field(default=10, gt=0, le=1_000_000)
    cb_success_threshold: int = Field(default=3, gt=0, le=1_000_000)
    cb_timeout_duration_secs: int = Field(default=60, gt=0, le=_DAY_S)
    cb_window_duration_secs: int = Field(default=120, gt=0, le=_DAY_S)
    disable_circuit_breaker: bool = False
    # --- SMG overload protection and admission
    worker_overload_protection: bool = Field(default=True, description="SMG: skip workers over the thresholds")
    worker_overload_waiting_requests: int = Field(default=8, gt=0, le=1_000_000)
    worker_overload_token_usage: float = Field(default=0.8, gt=0, le=1)
    worker_overload_shed: bool = Field(default=False, description="SMG: 503 when every worker is overloaded")
    max_concurrent_requests: int = Field(default=-1, ge=-1, le=100_000_000, description="SMG: -1 = SMG's bound")
    queue_size: int = Field(default=100, ge=0, le=100_000_000, description="SMG: requests queued past the bound")
    queue_timeout_secs: int = Field(default=60, gt=0, le=_DAY_S)
    request_timeout_secs: int = Field(default=1800, gt=0, le=7 * _DAY_S)
    shutdown_grace_period_secs: int = Field(
        default=0, ge=0, le=_DAY_S, description="SMG: drain time on SIGTERM (SMG: 180; the load is over by then)"
    )
    log_level: Literal["debug", "info", "warn", "error"] = "warn"
    extra_args: list[str] = Field(default_factory=list, description="passed verbatim to the router's launcher")
    startup_timeout_s: float = Field(default=120.0, gt=0, le=_DAY_S)
    metrics_interval_s: float = Field(default=0.5, gt=0, le=3600, description="Python router: worker /metrics refresh")

    @field_validator("routing_key_headers")
    @classmethod
    def _header_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.strip() or any(c in name for c in " :\t\r\n"):
                raise ValueError(f"{name!r} is not an HTTP header name; give names such as x-session-id")
        return v

    @field_validator("prefill_policy")
    @classmethod
    def _prefill_policy(cls, v: str | None) -> str | None:
        if v is not None and v not in SMG_POLICIES + PREFILL_ONLY_POLICIES:
            raise ValueError(
                f"{v!r} is not an SMG policy; use one of {', '.join(SMG_POLICIES + PREFILL_ONLY_POLICIES)}"
            )
        return v

    @field_validator("decode_policy")
    @classmethod
    def _decode_policy(cls, v: str | None) -> str | None:
        if v is not None and v not in SMG_POLICIES:
            raise ValueError(f"{v!r} is not an SMG decode policy; use one of {', '.join(SMG_POLICIES)}")
        return v

    @property
    def resolved_implementation(self) -> RouterImplementation:
        """``implementation``, or ``smg`` when it is installed, else ``sglang-router``."""
        return self.implementation or default_implementation()

    def resilience_settings(self, implementation: str | None = None) -> dict[str, Any]:
        """Retries, circuit breaker, overload protection and admission as the router runs them (goes into
        every routing result: these settings change what a policy comparison measures)."""
        impl = implementation or self.resolved_implementation
        if impl == "python":
            return {"implementation": "python", "retries": "none", "circuit_breaker": "none", "overload": "none"}
        out: dict[str, Any] = {
            "implementation": impl,
            "retries": "disabled"
            if self.disable_retries
            else {
                "max_attempts": self.retry_max_retries,
                "initial_backoff_ms": self.retry_initial_backoff_ms,
                "max_backoff_ms": self.retry_max_backoff_ms,
                "backoff_multiplier": self.retry_backoff_multiplier,
                "jitter_factor": self.retry_jitter_factor,
            },
            "circuit_breaker": "disabled"
            if self.disable_circuit_breaker
            else {
                "failure_threshold": self.cb_failure_threshold,
                "success_threshold": self.cb_success_threshold,
                "timeout_duration_secs": self.cb_timeout_duration_secs,
                "window_duration_secs": self.cb_window_duration_secs,
            },
        }
        if impl == "smg":
            out["overload_protection"] = (
                {
                    "waiting_requests": self.worker_overload_waiting_requests,
                    "token_usage": self.worker_overload_token_usage,
                    "shed": self.worker_overload_shed,
                }
                if self.worker_overload_protection
                else "disabled"
            )
            out["admission"] = {
                "max_concurrent_requests": self.max_concurrent_requests,
                "queue_size": self.queue_size,
                "queue_timeout_secs": self.queue_timeout_secs,
            }
            out["load_monitor_interval_s"] = self.load_monitor_interval
        return out
