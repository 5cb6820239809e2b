"""RoutingConfig: N workers behind a router (the real sglang-router or our Python router)."""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import ConfigError
from .pd_fleet import PDFleetOptions
from .repeats import RepeatOptions
from .router_config import RouterConfig, real_router_policies
from .server_config import ServerConfig, ServerSettings, check_base_url
from .workload import DatasetName, WorkloadConfig

__all__ = ["REAL_ROUTER_POLICIES", "RoutingConfig"]

REAL_ROUTER_POLICIES = ("cache_aware", "round_robin", "random", "power_of_two")

_DEPRECATED_EXTRA_ARGS = "server_extra_args"


class RoutingConfig(WorkloadConfig, ServerSettings, RepeatOptions, PDFleetOptions):
    """A fleet of ``num_gpus / tp_size`` workers (worker i on GPUs i·tp_size … (i+1)·tp_size−1) behind a
    router, under one seeded workload.

    Every :class:`ServerSettings` field (``max_running_requests``, ``context_length``, ``extra_args``,
    ``sim_args``, the API key…) is a field here, flat, and applies to every worker;
    :meth:`worker_server_configs` adds each worker's id, port, GPUs (or URL). ``server_extra_args`` is
    still accepted as a deprecated name of ``extra_args``.

    ``routing_policy`` runs on the real router when it is one of its policies (``router.implementation``:
    SMG's nine by default, or sglang-router's cache_aware / round_robin / random / power_of_two;
    ``router_impl='auto'`` or ``'sglang'``, docs/routing.md); shortest_queue and any policy registered with
    ``RoutingFactory`` run on our Python router (``router_impl='python'`` forces it for the builtins too,
    to compare "ours vs the real router"). ``router`` (alias ``router_config``, the spec's name) holds
    the router knobs; our Python cache_aware policy uses the same ones.

    Example (the spec's API; ``backend="sim"`` needs no GPU)::

        RoutingConfig(model_path="meta-llama/Llama-2-7b-hf", num_gpus=3, routing_policy="cache_aware",
                      backend="sim")
    """

    num_gpus: int = Field(default=4, ge=1, le=4096)
    worker_urls: list[str] = Field(default_factory=list, description="backend='external': running workers")
    routing_policy: str = "cache_aware"
    router_impl: Literal["auto", "sglang", "python"] = "auto"
    base_port: int = Field(default=0, ge=0, le=65535, description="worker i listens on base_port+i; 0 = free ports")
    worker_sim_args: dict[int, list[str]] = Field(default_factory=dict, description="extra sim flags by worker index")
    router: RouterConfig = Field(default_factory=RouterConfig)
    router_config: RouterConfig | None = Field(
        default=None, exclude=True, repr=False, description="alias of router (the spec's name); moved into router"
    )
    enable_node_failures: bool = Field(
        default=False, description="the spec's switch: True needs a failure_schedule (a schedule alone also works)"
    )
    failure_schedule: dict[float, list[int]] = Field(
        default_factory=dict, description="seconds after load start → worker indices to kill ([] restarts them)"
    )
    dataset_name: DatasetName = "generated-shared-prefix"
    output_dir: Path = Path("results/routing_test")
    name: str | None = None
    collect_timeseries: bool = True
    collect_per_node_metrics: bool = Field(default=True, description="the spec's field; per-worker tables always made")
    timeseries_interval_s: float = Field(default=0.5, gt=0, le=3600)
    flush_cache_after_warmup: bool = True
    write_plots: bool = True
    progress: bool = True

    @model_validator(mode="before")
    @classmethod
    def _deprecated_extra_args(cls, data: Any) -> Any:
        if not isinstance(data, dict) or _DEPRECATED_EXTRA_ARGS not in data:
            return data
        values = dict(data)
        old = values.pop(_DEPRECATED_EXTRA_ARGS)
        if values.get("extra_args"):
            raise ValueError("server_extra_args is the old name of extra_args; give only extra_args")
        warnings.warn(
            "RoutingConfig: server_extra_args is deprecated; call it extra_args (as in ServerConfig)",
            DeprecationWarning,
            stacklevel=2,
        )
        values["extra_args"] = old
        return values

    @field_validator("routing_policy")
    @classmethod
    def _policy_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a policy, e.g. cache_aware, round_robin, random, shortest_queue")
        return v.strip()

    @field_validator("worker_urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return [check_base_url(url) for url in v]

    @field_validator("failure_schedule")
    @classmethod
    def _schedule_times(cls, v: dict[float, list[int]]) -> dict[float, list[int]]:
        for at_s in v:
            if not math.isfinite(at_s) or at_s < 0:
                raise ValueError(f"time {at_s}: use seconds ≥ 0 after the load starts")
        return v

    @model_validator(mode="after")
    def _fleet(self) -> RoutingConfig:
        if self.router_config is not None:
            self.__dict__["router"] = self.router_config
            self.__dict__["router_config"] = None
            self.__pydantic_fields_set__.discard("router_config")
            self.__pydantic_fields_set__.add("router")
        self._check_pd()
        if self.backend == "external":
            if not self.worker_urls:
                raise ValueError("worker_urls: backend='external' needs the URLs of running workers")
        elif self.worker_urls:
            raise ValueError(f"worker_urls is only used with backend='external' (backend is {self.backend!r})")
        if self.backend != "external" and self.num_gpus % self.tp_size:
            raise ValueError(f"num_gpus ({self.num_gpus}) must be a multiple of tp_size ({self.tp_size})")
        if self.base_port and self.base_port + self.num_workers - 1 > 65535:
            raise ValueError(
                f"base_port: workers would listen on {self.base_port}…{self.base_port + self.num_workers - 1}, "
                "past 65535; lower base_port or use 0 for free ports"
            )
        real = real_router_policies(self.router.resolved_implementation)
        if self.router_impl == "sglang" and self.routing_policy not in real:
            impl = self.router.resolved_implementation
            raise ValueError(
                f"routing_policy {self.routing_policy!r} is not a policy of the real {impl} "
                f"({', '.join(real) or 'none'}); use router_impl='python' or 'auto'"
                + ("" if impl == "smg" else ", or router.implementation='smg'")
            )
        if self.worker_sim_args and self.backend != "sim":
            raise ValueError("worker_sim_args need backend='sim'")
        if self.failure_schedule and self.sim_workers_per_process > 1:
            raise ValueError(
                "failure_schedule kills worker processes, but sim_workers_per_process > 1 puts several workers in "
                "one process; use sim_workers_per_process=1 with a failure schedule"
            )
        if self.enable_node_failures and not self.failure_schedule:
            raise ValueError(
                "enable_node_failures needs failure_schedule, e.g. {30: [1], 60: []} (kill worker 1 at 30 s, "
                "restart it at 60 s)"
            )
        self._check_worker_indices()
        return self

    def _check_pd(self) -> None:
        """PD fleet (config/pd_fleet.py): valid, and ``num_gpus`` = (num_prefill + num_decode) × tp_size."""
        problem = self.pd_problem(
            {
                "backend": self.backend,
                "tp_size": self.tp_size,
                "num_gpus": self.num_gpus,
                "num_gpus_set": "num_gpus" in self.model_fields_set,
                "implementation": self.router.resolved_implementation,
                "router_impl": self.router_impl,
                "routing_policy": self.routing_policy,
                "smg_policy": self.routing_policy in real_router_policies("smg"),
            }
        )
        if problem:
            raise ValueError(problem)
        if self.is_pd:
            self.__dict__["num_gpus"] = (self.num_prefill + self.num_decode) * self.tp_size

    def _check_worker_indices(self) -> None:
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

    @classmethod
    def yaml_values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A flat mapping of fields, or a spec-style template: ``node_config:`` (settings for every
        worker) and ``routing_config:`` (``policy`` → routing_policy; router knobs such as
        cache_threshold / balance_*_threshold → ``router``)."""
        if "node_config" not in data and "routing_config" not in data:
            return data
        values = {k: v for k, v in data.items() if k not in ("node_config", "routing_config")}
        worker_keys = set(cls.model_fields) - {"router", "router_config"} | {_DEPRECATED_EXTRA_ARGS}
        for key, value in _section(data, "node_config").items():
            if key not in worker_keys:
                raise ConfigError(
                    f"node_config.{key}: not a per-worker setting of RoutingConfig; {_hint(key, worker_keys)}"
                )
            values[key] = value
        router = dict(values.pop("router", {}) or {})
        for key, value in _section(data, "routing_config").items():
            if key in ("policy", "routing_policy"):
                values["routing_policy"] = value
            elif key in RouterConfig.model_fields:
                router[key] = value
            elif key in cls.model_fields:
                values[key] = value
            else:
                known = {"policy", *RouterConfig.model_fields, *cls.model_fields}
                raise ConfigError(
                    f"routing_config.{key}: not policy, a RouterConfig or a RoutingConfig field; {_hint(key, known)}"
                )
        if router:
            values["router"] = router
        return values

    @property
    def num_workers(self) -> int:
        """Number of workers (``len(worker_urls)`` for external, PD: ``num_prefill + num_decode``, else
        ``num_gpus // tp_size``)."""
        if self.is_pd:
            return self.num_prefill + self.num_decode
        return len(self.worker_urls) if self.backend == "external" else self.num_gpus // self.tp_size

    @property
    def uses_real_router(self) -> bool:
        """True when the policy runs on a real router (SMG or sglang-router, ``router.implementation``)."""
        impl = self.router.resolved_implementation
        return self.router_impl != "python" and self.routing_policy in real_router_policies(impl)

    @property
    def router_implementation(self) -> str:
        """The router this config runs: ``smg``, ``sglang-router`` or ``python``."""
        return self.router.resolved_implementation if self.uses_real_router else "python"

    @property
    def server_extra_args(self) -> list[str]:
        """Deprecated name of :attr:`extra_args`."""
        warnings.warn("RoutingConfig.server_extra_args is deprecated; use extra_args", DeprecationWarning, stacklevel=2)
        return self.extra_args

    def worker_server_configs(self, bootstrap_ports: Sequence[int] = ()) -> list[ServerConfig]:
        """One ServerConfig per worker: every shared server setting of this config, plus the worker's id
        (``worker_i``), port (``base_port + i``, or 0 for a free one), first GPU (``i × tp_size``) or,
        for ``backend='external'``, its URL. Sim workers get ``sim_args`` + ``worker_sim_args[i]`` and,
        when ``sim_ground_truth_log`` is set, their own log file ``<stem>.worker_<i><suffix>``. With
        ``coverage`` every worker writes its data into the one ``coverage_data_dir(output_dir)``.

        PD fleets (``num_prefill``/``num_decode``): workers are ``prefill_i`` then ``decode_j`` with their
        role's flags (:meth:`PDFleetOptions.pd_flags`; prefill i gets ``bootstrap_ports[i]`` when given),
        and sim workers always write a ground-truth log (default ``<output_dir>/sim_ground_truth.jsonl``
        + the worker suffix): the TTFT breakdown is read from it."""
        configs = []
        for i in range(self.num_workers):
            values = self.settings_values()
            values["server_id"] = self.pd_server_id(i) if self.is_pd else f"worker_{i}"
            if self.backend == "external":
                values["url"] = self.worker_urls[i]
            else:
                values.update(port=self.base_port + i if self.base_port else 0, gpu_id=i * self.tp_size)
            if self.backend == "sim":
                values["sim_args"] = [*self.sim_args, *self.worker_sim_args.get(i, [])]
            if self.is_pd:
                port = bootstrap_ports[i] if i < min(len(bootstrap_ports), self.num_prefill) else None
                key = "sim_args" if self.backend == "sim" else "extra_args"
                values[key] = [*values.get(key, []), *self.pd_flags(i, port)]
            log = self.sim_ground_truth_log
            if log is None and self.is_pd and self.backend == "sim":
                log = self.output_dir / "sim_ground_truth.jsonl"
            if log is not None:
                values["sim_ground_truth_log"] = log.with_name(f"{log.stem}.worker_{i}{log.suffix}")
            if self.coverage:
                values["coverage_dir"] = self.coverage_data_dir(self.output_dir)
            configs.append(ServerConfig(**values))
        return configs


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: must be a mapping of field: value, got a {type(section).__name__}")
    return section


def _hint(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return (f"did you mean {close[0]}? " if close else "") + "check the spelling or remove it"
