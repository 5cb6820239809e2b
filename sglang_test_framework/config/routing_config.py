"""RoutingConfig: N workers behind a router (the real sglang-router or our Python router)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import ConfigError
from .router_config import RouterConfig
from .server_config import Backend, ServerConfig
from .workload import DatasetName, WorkloadConfig

__all__ = ["REAL_ROUTER_POLICIES", "RoutingConfig"]

REAL_ROUTER_POLICIES = ("cache_aware", "round_robin", "random", "power_of_two")


class RoutingConfig(WorkloadConfig):
    """A fleet of ``num_gpus / tp_size`` workers (worker i on GPUs i·tp_size … (i+1)·tp_size−1) behind a
    router, under one seeded workload.

    ``routing_policy`` cache_aware / round_robin / random / power_of_two run on the real sglang-router
    (``router_impl='auto'`` or ``'sglang'``); shortest_queue and any policy registered with
    ``RoutingFactory`` run on our Python router (``router_impl='python'`` forces it for the builtins too,
    to compare "ours vs the real router").
    """

    model_path: str = Field(min_length=1)
    backend: Backend = "sim"
    num_gpus: int = Field(default=4, ge=1)
    tp_size: int = Field(default=1, ge=1)
    worker_urls: list[str] = Field(default_factory=list, description="backend='external': running workers")
    routing_policy: str = "cache_aware"
    router_impl: Literal["auto", "sglang", "python"] = "auto"
    host: str = "127.0.0.1"
    base_port: int = Field(default=0, ge=0, le=65535, description="worker i listens on base_port+i; 0 = free ports")
    max_running_requests: int | None = Field(default=None, gt=0, description="per worker")
    max_total_tokens: int | None = Field(default=None, gt=0, description="per worker KV capacity")
    mem_fraction_static: float | None = Field(default=None, gt=0, lt=1)
    chunked_prefill_size: int | None = None
    schedule_policy: str | None = None
    schedule_conservativeness: float | None = Field(default=None, gt=0)
    enable_torch_compile: bool = False
    disable_radix_cache: bool = False
    api_key: str | None = None
    server_extra_args: list[str] = Field(default_factory=list)
    sim_profile: str | None = None
    sim_args: list[str] = Field(default_factory=list, description="--sim-* flags for every worker")
    worker_sim_args: dict[int, list[str]] = Field(default_factory=dict, description="extra sim flags by worker index")
    startup_timeout_s: float = Field(default=600.0, gt=0)
    router: RouterConfig = Field(default_factory=RouterConfig)
    router_config: RouterConfig | None = Field(default=None, description="alias of router (spec name)")
    enable_node_failures: bool = False
    failure_schedule: dict[float, list[int]] = Field(
        default_factory=dict, description="seconds after load start → worker indices to kill"
    )
    dataset_name: DatasetName = "generated-shared-prefix"
    output_dir: Path = Path("results/routing_test")
    name: str | None = None
    collect_timeseries: bool = True
    collect_per_node_metrics: bool = True
    timeseries_interval_s: float = Field(default=0.5, gt=0)
    flush_cache_after_warmup: bool = True
    write_plots: bool = True
    progress: bool = True

    @field_validator("routing_policy")
    @classmethod
    def _policy_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a policy, e.g. cache_aware, round_robin, random, shortest_queue")
        return v.strip()

    @model_validator(mode="after")
    def _fleet(self) -> RoutingConfig:
        if self.router_config is not None:
            self.__dict__["router"] = self.router_config
            self.__dict__["router_config"] = None
        if self.backend == "external":
            if not self.worker_urls:
                raise ValueError("worker_urls: backend='external' needs the URLs of running workers")
        elif self.worker_urls:
            raise ValueError(f"worker_urls is only used with backend='external' (backend is {self.backend!r})")
        if self.backend != "external" and self.num_gpus % self.tp_size:
            raise ValueError(f"num_gpus ({self.num_gpus}) must be a multiple of tp_size ({self.tp_size})")
        if self.router_impl == "sglang" and self.routing_policy not in REAL_ROUTER_POLICIES:
            raise ValueError(
                f"routing_policy {self.routing_policy!r} is not a policy of the real sglang-router "
                f"({', '.join(REAL_ROUTER_POLICIES)}); use router_impl='python' or 'auto'"
            )
        bad = [
            i
            for i in {*self.worker_sim_args, *(w for ws in self.failure_schedule.values() for w in ws)}
            if not 0 <= i < self.num_workers
        ]
        if bad:
            raise ValueError(
                f"worker index {sorted(bad)} out of range: there are {self.num_workers} workers "
                f"(0 … {self.num_workers - 1})"
            )
        return self

    @classmethod
    def yaml_values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A flat mapping of fields, or a spec-style template: ``node_config:`` (settings for every
        worker) and ``routing_config:`` (``policy`` → routing_policy; router knobs such as
        cache_threshold / balance_*_threshold → ``router``)."""
        if "node_config" not in data and "routing_config" not in data:
            return data
        values = {k: v for k, v in data.items() if k not in ("node_config", "routing_config")}
        worker_keys = set(cls.model_fields) - {"router", "router_config"}
        for key, value in (data.get("node_config") or {}).items():
            if key not in worker_keys:
                raise ConfigError(f"node_config.{key}: not a per-worker setting of RoutingConfig")
            values[key] = value
        router = dict(values.pop("router", {}) or {})
        for key, value in (data.get("routing_config") or {}).items():
            if key in ("policy", "routing_policy"):
                values["routing_policy"] = value
            elif key in RouterConfig.model_fields:
                router[key] = value
            elif key in cls.model_fields:
                values[key] = value
            else:
                raise ConfigError(f"routing_config.{key}: unknown; use policy or a RouterConfig field")
        if router:
            values["router"] = router
        return values

    @property
    def num_workers(self) -> int:
        """Number of workers (``len(worker_urls)`` for external, else ``num_gpus // tp_size``)."""
        return len(self.worker_urls) if self.backend == "external" else self.num_gpus // self.tp_size

    @property
    def uses_real_router(self) -> bool:
        """True when the policy runs on the real sglang-router."""
        return self.router_impl != "python" and self.routing_policy in REAL_ROUTER_POLICIES

    def worker_server_configs(self) -> list[ServerConfig]:
        """One ServerConfig per worker (ports base_port+i, or 0 for automatic)."""
        configs = []
        for i in range(self.num_workers):
            if self.backend == "external":
                configs.append(
                    ServerConfig(
                        model_path=self.model_path,
                        backend="external",
                        server_id=f"worker_{i}",
                        url=self.worker_urls[i],
                        api_key=self.api_key,
                    )
                )
                continue
            configs.append(
                ServerConfig(
                    model_path=self.model_path,
                    backend=self.backend,
                    server_id=f"worker_{i}",
                    host=self.host,
                    port=self.base_port + i if self.base_port else 0,
                    gpu_id=i * self.tp_size,
                    tp_size=self.tp_size,
                    max_running_requests=self.max_running_requests,
                    max_total_tokens=self.max_total_tokens,
                    mem_fraction_static=self.mem_fraction_static,
                    chunked_prefill_size=self.chunked_prefill_size,
                    schedule_policy=self.schedule_policy,
                    disable_radix_cache=self.disable_radix_cache,
                    schedule_conservativeness=self.schedule_conservativeness,
                    enable_torch_compile=self.enable_torch_compile,
                    api_key=self.api_key,
                    extra_args=list(self.server_extra_args),
                    startup_timeout_s=self.startup_timeout_s,
                    sim_profile=self.sim_profile if self.backend == "sim" else None,
                    sim_args=[*self.sim_args, *self.worker_sim_args.get(i, [])] if self.backend == "sim" else [],
                )
            )
        return configs
