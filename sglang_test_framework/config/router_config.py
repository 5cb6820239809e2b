"""RouterConfig: the knobs of ``python -m sglang_router.launch_router`` and of our Python router."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .secrets import ApiKeyConfig

__all__ = ["RouterConfig"]

_DAY_S = 86_400


class RouterConfig(ApiKeyConfig):
    """Router settings. Defaults follow sglang-router 0.3.2's CLI except where noted.

    The cache-aware knobs (``cache_threshold``, ``balance_abs_threshold``, ``balance_rel_threshold``,
    ``eviction_interval_secs``, ``max_tree_size``) configure the real router and our Python
    ``cache_aware`` policy alike (``RoutingFactory.create(..., router_config=...)``).

    ``port`` and ``prometheus_port`` default to 0 (pick a free port) because the router's own defaults
    (30000 and 29000) collide with a worker's default port. ``worker_startup_check_interval`` defaults to
    2 s (router default 30 s) because it is also the period of the power_of_two load monitor's
    ``/get_load`` poll. ``health_check_interval_secs`` defaults to 5 s (router default 60 s) so a killed
    worker is noticed within a test run. The API key comes from ``api_key``, ``api_key_file`` or
    ``$SGLANG_TEST_API_KEY`` and is never dumped.
    """

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=0, ge=0, le=65535)
    prometheus_host: str = Field(default="127.0.0.1", min_length=1)
    prometheus_port: int = Field(default=0, ge=0, le=65535)
    cache_threshold: float = Field(default=0.3, ge=0, le=1)
    balance_abs_threshold: int = Field(default=64, ge=0, le=1_000_000_000)
    balance_rel_threshold: float = Field(default=1.5, ge=1, le=1_000_000)
    eviction_interval_secs: int = Field(default=60, gt=0, le=_DAY_S)
    max_tree_size: int = Field(default=67108864, gt=0, le=2**40, description="characters per worker tree")
    worker_startup_timeout_secs: int = Field(default=600, gt=0, le=_DAY_S)
    worker_startup_check_interval: int = Field(default=2, gt=0, le=3600)
    health_check_interval_secs: int = Field(default=5, gt=0, le=_DAY_S)
    health_check_timeout_secs: int = Field(default=5, gt=0, le=3600)
    health_failure_threshold: int = Field(default=3, gt=0, le=1000)
    health_success_threshold: int = Field(default=2, gt=0, le=1000)
    retry_max_retries: int = Field(default=5, ge=0, le=100)
    disable_retries: bool = False
    disable_circuit_breaker: bool = False
    request_timeout_secs: int = Field(default=1800, gt=0, le=7 * _DAY_S)
    log_level: Literal["debug", "info", "warn", "error"] = "warn"
    extra_args: list[str] = Field(default_factory=list, description="passed verbatim to launch_router")
    startup_timeout_s: float = Field(default=120.0, gt=0, le=_DAY_S)
    metrics_interval_s: float = Field(default=0.5, gt=0, le=3600, description="Python router: worker /metrics refresh")
