"""ServerConfig: how to launch (or attach to) one SGLang server."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

__all__ = ["Backend", "ServerConfig"]

Backend = Literal["sim", "sglang", "external"]


class ServerConfig(StrictModel):
    """One server. ``backend='sim'`` runs the built-in simulated server with the same flags,
    ``'sglang'`` runs ``python -m sglang.launch_server`` pinned to GPUs, ``'external'`` attaches to
    ``url`` and launches nothing.

    Only flags whose value is set (not ``None``) are passed to the server, with SGLang's flag names
    (``max_running_requests`` → ``--max-running-requests``). ``enable_metrics`` defaults to True because
    the framework scrapes ``/metrics`` for its server-side time series.
    """

    model_path: str = Field(min_length=1)
    backend: Backend = "sim"
    server_id: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=30000, ge=0, le=65535, description="0 picks a free port")
    url: str | None = Field(default=None, description="base URL of a running server (backend='external')")
    gpu_id: int = Field(default=0, ge=0)
    tp_size: int = Field(default=1, ge=1)
    max_running_requests: int | None = Field(default=None, gt=0)
    max_queued_requests: int | None = Field(default=None, gt=0)
    max_total_tokens: int | None = Field(default=None, gt=0)
    mem_fraction_static: float | None = Field(default=None, gt=0, lt=1)
    chunked_prefill_size: int | None = None
    max_prefill_tokens: int | None = Field(default=None, gt=0)
    schedule_policy: str | None = None
    schedule_conservativeness: float | None = Field(default=None, gt=0)
    enable_torch_compile: bool = False
    disable_radix_cache: bool = False
    enable_metrics: bool = True
    enable_cache_report: bool = True
    api_key: str | None = None
    served_model_name: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    random_seed: int | None = None
    log_level: str | None = None
    extra_args: list[str] = Field(default_factory=list, description="passed verbatim to the server")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")
    startup_timeout_s: float = Field(default=600.0, gt=0)
    sim_profile: str | None = Field(default=None, description="sim latency profile name or YAML path")
    sim_ground_truth_log: Path | None = None
    sim_args: list[str] = Field(default_factory=list, description="extra --sim-* flags (faults, jitter)")

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

    @model_validator(mode="after")
    def _backend_fields(self) -> ServerConfig:
        if self.backend == "external" and not self.url:
            raise ValueError("backend='external' needs url='http://host:port' of a running server")
        if self.backend != "external" and self.url:
            raise ValueError(f"url is only used with backend='external' (backend is {self.backend!r})")
        if self.backend != "sim" and (self.sim_args or self.sim_ground_truth_log or self.sim_profile):
            raise ValueError("sim_profile, sim_args and sim_ground_truth_log need backend='sim'")
        return self

    @property
    def gpu_ids(self) -> list[int]:
        """GPUs this server uses: gpu_id … gpu_id + tp_size − 1."""
        return list(range(self.gpu_id, self.gpu_id + self.tp_size))
