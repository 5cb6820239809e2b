"""Server settings: :class:`ServerSettings` (what every server of a test shares; NodeConfig and RoutingConfig
compose it) and :class:`ServerConfig` (one server: settings + identity, port, GPU, URL)."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .secrets import ApiKeyConfig

__all__ = [
    "MAX_SERVER_TOKENS",
    "RAY_EXTRA_HINT",
    "Backend",
    "Placement",
    "ServerConfig",
    "ServerSettings",
    "check_base_url",
]

Backend = Literal["sim", "sglang", "external"]
Placement = Literal["local", "ray"]

RAY_EXTRA_HINT = "pip install 'sglang-test-framework[ray]' (or pip install \"ray[default]\")"
"""How to install the optional Ray dependency (``placement='ray'``, ``client_nodes``)."""

MAX_SERVER_TOKENS = 1_000_000_000
"""Upper bound of token-count server flags (KV capacity, context length, prefill sizes)."""

_DAY_S = 86_400.0

_RAY_FIELDS = ("ray_address", "ray_num_gpus", "ray_num_cpus", "ray_resources", "ray_spread")


def check_base_url(url: str) -> str:
    """``url`` if it looks like ``http(s)://host[:port]``.

    Raises:
        ValueError: It does not (the message shows the expected form).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/") or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not a base URL; write it as http://host:port")
    return url


class ServerSettings(ApiKeyConfig):
    """Settings shared by every server of a test, with SGLang's names. ``backend='sim'`` runs the
    built-in simulated server with the same flags, ``'sglang'`` runs ``python -m sglang.launch_server``,
    ``'external'`` attaches to running servers and launches nothing.

    Only flags whose value is set (not ``None``) are passed to the server (``max_running_requests`` →
    ``--max-running-requests``). ``enable_metrics`` defaults to True because the framework scrapes
    ``/metrics`` for its server-side time series. The API key comes from ``api_key``, ``api_key_file`` or
    ``$SGLANG_TEST_API_KEY`` (see :class:`~sglang_test_framework.config.secrets.ApiKeyConfig`).
    """

    model_path: str = Field(min_length=1)
    backend: Backend = "sim"
    host: str = Field(default="127.0.0.1", min_length=1)
    tp_size: int = Field(default=1, ge=1, le=1024)
    max_running_requests: int | None = Field(default=None, gt=0, le=1_000_000)
    max_queued_requests: int | None = Field(default=None, gt=0, le=100_000_000)
    max_total_tokens: int | None = Field(default=None, gt=0, le=MAX_SERVER_TOKENS)
    mem_fraction_static: float | None = Field(default=None, gt=0, lt=1)
    chunked_prefill_size: int | None = Field(default=None, le=MAX_SERVER_TOKENS, description="-1 disables chunking")
    max_prefill_tokens: int | None = Field(default=None, gt=0, le=MAX_SERVER_TOKENS)
    schedule_policy: str | None = None
    schedule_conservativeness: float | None = Field(default=None, gt=0, le=100)
    enable_torch_compile: bool = False
    disable_radix_cache: bool = False
    enable_metrics: bool = True
    enable_cache_report: bool = True
    served_model_name: str | None = None
    context_length: int | None = Field(default=None, gt=0, le=MAX_SERVER_TOKENS)
    random_seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    log_level: str | None = None
    extra_args: list[str] = Field(default_factory=list, description="passed verbatim to the server")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    startup_timeout_s: float = Field(default=600.0, gt=0, le=_DAY_S)
    sim_profile: str | None = Field(default=None, description="sim latency profile name or YAML path")
    sim_ground_truth_log: Path | None = None
    sim_args: list[str] = Field(default_factory=list, description="extra --sim-* flags (faults, jitter)")
    sim_workers_per_process: int = Field(
        default=1, ge=1, le=4096, description="sim: workers served by one fleet process (ServerManager.start_servers)"
    )
    coverage: bool = Field(
        default=False, description="run each server we launch under coverage.py and report its code coverage"
    )
    coverage_include: list[str] = Field(
        default_factory=list,
        description="file globs to measure (default: the server's package, */sglang_test_framework/sim/* or "
        "*/sglang/*)",
    )
    coverage_dir: Path | None = Field(
        default=None, description="coverage data and report of the servers (default: <output_dir>/coverage)"
    )
    placement: Placement = Field(
        default="local",
        description="where servers we launch run: 'local' (this machine) or 'ray' (each a Ray actor on a node "
        "of a Ray cluster; needs the ray extra; docs/scaling.md)",
    )
    ray_address: str | None = Field(
        default=None,
        description="placement='ray': Ray cluster address (host:port, 'auto'); None: $RAY_ADDRESS or a new local Ray",
    )
    ray_num_gpus: float | None = Field(
        default=None,
        ge=0,
        le=1024,
        description="placement='ray': GPUs per server (default tp_size for sglang, 0 for sim)",
    )
    ray_num_cpus: float = Field(default=1.0, ge=0, le=1024, description="placement='ray': CPUs Ray reserves per server")
    ray_resources: dict[str, float] = Field(
        default_factory=dict, description="placement='ray': custom Ray resources per server, e.g. {\"h100\": 1}"
    )
    ray_spread: bool = Field(default=True, description="placement='ray': spread servers over nodes (False packs them)")

    @field_validator("chunked_prefill_size")
    @classmethod
    def _chunk_size(cls, v: int | None) -> int | None:
        if v is not None and v != -1 and v <= 0:
            raise ValueError("must be a positive token count, or -1 to disable chunking")
        return v

    @field_validator("extra_args", "sim_args")
    @classmethod
    def _no_shell_strings(cls, v: list[str]) -> list[str]:
        for arg in v:
            if arg.startswith("--") and " " in arg and "=" not in arg:
                raise ValueError(f"{arg!r} looks like several arguments in one string; pass a list item each")
        return v

    @field_validator("coverage_include")
    @classmethod
    def _coverage_globs(cls, v: list[str]) -> list[str]:
        for pattern in v:
            # coverage.py's rc file splits lists at commas and newlines.
            if not pattern.strip() or any(c in pattern for c in ",\n\r"):
                raise ValueError(f"{pattern!r}: give one file glob per item, without commas, e.g. '*/sglang/srt/*'")
        return v

    @field_validator("coverage_dir")
    @classmethod
    def _coverage_dir_line(cls, v: Path | None) -> Path | None:
        if v is not None and any(c in str(v) for c in "\n\r"):
            raise ValueError("must be a directory path on one line")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"{name!r} is not an environment variable name; use names like CUDA_LAUNCH_BLOCKING")
        return v

    @model_validator(mode="after")
    def _sim_only_fields(self) -> ServerSettings:
        if self.backend != "sim" and (self.sim_args or self.sim_ground_truth_log or self.sim_profile):
            raise ValueError("sim_profile, sim_args and sim_ground_truth_log need backend='sim'")
        if self.backend != "sim" and self.sim_workers_per_process > 1:
            raise ValueError("sim_workers_per_process needs backend='sim' (one process serves several sim workers)")
        self._check_placement()
        if self.coverage and self.backend == "external":
            raise ValueError(
                "coverage measures servers we launch: use backend='sim' or 'sglang', or run the external "
                "server under coverage.py yourself"
            )
        return self

    def _check_placement(self) -> None:
        if self.placement == "local":
            fields = ServerSettings.model_fields
            ray_set = [n for n in _RAY_FIELDS if getattr(self, n) != fields[n].get_default(call_default_factory=True)]
            if ray_set:
                raise ValueError(f"{', '.join(ray_set)} need placement='ray' (placement is 'local')")
            return
        if self.backend == "external":
            raise ValueError("placement='ray' launches servers; backend='external' launches none (use sim or sglang)")
        if self.sim_workers_per_process > 1:
            raise ValueError("sim_workers_per_process > 1 runs a fleet in one local process; use placement='local'")
        if importlib.util.find_spec("ray") is None:
            raise ValueError(f"placement='ray' needs Ray, which is not installed: {RAY_EXTRA_HINT}")
        for name, amount in self.ray_resources.items():
            if not name or not math.isfinite(amount) or amount < 0:
                raise ValueError(f"ray_resources[{name!r}]: use a resource name and an amount ≥ 0")

    def ray_request(self) -> dict[str, float]:
        """What Ray reserves for one server (placement='ray'): ``CPU``, ``GPU`` (``ray_num_gpus``, else
        ``tp_size`` for sglang and 0 for the sim) and the custom ``ray_resources``."""
        gpus = self.ray_num_gpus if self.ray_num_gpus is not None else (self.tp_size if self.backend == "sglang" else 0)
        return {"CPU": self.ray_num_cpus, "GPU": float(gpus), **self.ray_resources}

    def coverage_data_dir(self, output_dir: Path) -> Path:
        """Where the servers' coverage data and report go: ``coverage_dir``, else ``<output_dir>/coverage``."""
        return self.coverage_dir if self.coverage_dir is not None else output_dir / "coverage"

    def settings_values(self) -> dict[str, Any]:
        """Every :class:`ServerSettings` field's value (copied), the API key resolved and its file
        dropped: the shared part of each per-server :class:`ServerConfig` built from this config."""
        values = {name: copy.deepcopy(getattr(self, name)) for name in ServerSettings.model_fields}
        values["api_key_file"] = None
        return values


class ServerConfig(ServerSettings):
    """One server: the shared :class:`ServerSettings` plus where it runs.

    Example (``backend="sim"`` needs no GPU)::

        ServerConfig(model_path="meta-llama/Llama-2-7b-hf", backend="sim", port=0)
    """

    server_id: str | None = None
    port: int = Field(default=30000, ge=0, le=65535, description="0 picks a free port")
    url: str | None = Field(default=None, description="base URL of a running server (backend='external')")
    gpu_id: int = Field(default=0, ge=0, le=4095)

    @field_validator("url")
    @classmethod
    def _url_form(cls, v: str | None) -> str | None:
        return None if v is None else check_base_url(v)

    @model_validator(mode="after")
    def _backend_fields(self) -> ServerConfig:
        if self.backend == "external" and not self.url:
            raise ValueError("backend='external' needs url='http://host:port' of a running server")
        if self.backend != "external" and self.url:
            raise ValueError(f"url is only used with backend='external' (backend is {self.backend!r})")
        return self

    @property
    def gpu_ids(self) -> list[int]:
        """GPUs this server uses: gpu_id … gpu_id + tp_size − 1."""
        return list(range(self.gpu_id, self.gpu_id + self.tp_size))
