"""RouterConfig: the knobs of ``python -m sglang_router.launch_router`` and of our Python router."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel

__all__ = ["RouterConfig"]


class RouterConfig(StrictModel):
    """Router settings. Defaults follow sglang-router 0.3.2's CLI except where noted.

    ``port`` and ``prometheus_port`` default to 0 (pick a free port) because the router's own defaults
    (30000 and 29000) collide with a worker's default port. ``worker_startup_check_interval`` defaults to
    2 s (router default 30 s) because it is also the period of the power_of_two load monitor's
    ``/get_load`` poll. ``health_check_interval_secs`` defaults to 5 s (router default 60 s) so a killed
    worker is noticed within a test run.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = Field(default=0, ge=0, le=65535)
    cache_threshold: float = Field(default=0.3, ge=0, le=1)
    balance_abs_threshold: int = Field(default=64, ge=0)
    balance_rel_threshold: float = Field(default=1.5, ge=1)
    eviction_interval_secs: int = Field(default=60, gt=0)
    max_tree_size: int = Field(default=67108864, gt=0)
    worker_startup_timeout_secs: int = Field(default=600, gt=0)
    worker_startup_check_interval: int = Field(default=2, gt=0)
    health_check_interval_secs: int = Field(default=5, gt=0)
    health_check_timeout_secs: int = Field(default=5, gt=0)
    health_failure_threshold: int = Field(default=3, gt=0)
    health_success_threshold: int = Field(default=2, gt=0)
    retry_max_retries: int = Field(default=5, ge=0)
    disable_retries: bool = False
    disable_circuit_breaker: bool = False
    request_timeout_secs: int = Field(default=1800, gt=0)
    log_level: Literal["debug", "info", "warn", "error"] = "warn"
    api_key: str | None = None
    extra_args: list[str] = Field(default_factory=list, description="passed verbatim to launch_router")
    startup_timeout_s: float = Field(default=120.0, gt=0)
    metrics_interval_s: float = Field(default=0.5, gt=0, description="Python router: worker /metrics refresh")
