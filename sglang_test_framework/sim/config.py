"""SimConfig: the simulator's settings, typed, validated and frozen (built once from argv by ``args.py``).

Field names are the argparse destinations of the flags (``max_running_requests`` ↔
``--max-running-requests``), so every field names its flag as ``flag_of(field)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .profiles import GPUS, LatencyProfile, resolve_profile

__all__ = ["API_KEY_ENV", "REDACTED", "SimConfig", "flag_of"]

API_KEY_ENV = "SGLANG_SIM_API_KEY"
"""Environment variable read for the API key when ``--api-key`` is not given (keeps it out of ``ps``)."""

REDACTED = "***"
"""How the API key appears anywhere the simulator shows its settings."""

DEFAULT_MEM_FRACTION_STATIC = 0.88
DEFAULT_CHUNKED_PREFILL_SIZE = 8192


def flag_of(field: str) -> str:
    """The command-line flag of a SimConfig field: ``max_running_requests`` → ``--max-running-requests``."""
    return "--" + field.replace("_", "-")


class SimConfig(BaseModel):
    """Every flag of the simulator: SGLang's ``launch_server`` names plus ``--sim-*`` flags.

    Flags SGLang has but the simulator does not model (``--dtype``, ``--page-size``, CUDA-graph and
    compile switches, HiCache layout/IO options, …) are accepted and kept, so sweeps over them run and
    ``/server_info`` reports them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # ---- SGLang's flags
    model_path: str = Field(min_length=1)
    tokenizer_path: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=30000, ge=1, le=65535)
    tp_size: int = Field(default=1, ge=1)
    dp_size: int = 1
    max_running_requests: int | None = Field(default=None, gt=0)
    max_queued_requests: int | None = Field(default=None, gt=0)
    max_total_tokens: int | None = Field(default=None, gt=0)
    mem_fraction_static: float | None = Field(default=None, gt=0, lt=1)
    chunked_prefill_size: int | None = None
    max_prefill_tokens: int = Field(default=16384, gt=0)
    schedule_policy: str = "fcfs"
    schedule_conservativeness: float = Field(default=1.0, gt=0)
    api_key: SecretStr | None = None
    served_model_name: str | None = None
    context_length: int | None = Field(default=None, gt=0)
    random_seed: int = 0
    log_level: str = "info"
    stream_interval: int = Field(default=1, ge=1)
    page_size: int = Field(default=1, ge=1)
    decode_log_interval: int = Field(default=40, ge=1)
    dtype: str = "auto"
    load_format: str = "auto"
    base_gpu_id: int = Field(default=0, ge=0)
    hicache_ratio: float = Field(default=2.0, gt=0)
    hicache_size: int = Field(default=0, ge=0)
    hicache_write_policy: str = "write_through"
    hicache_io_backend: str = "kernel"
    hicache_mem_layout: str = "page_first"
    hicache_storage_backend: str | None = None
    enable_torch_compile: bool = False
    disable_radix_cache: bool = False
    enable_metrics: bool = False
    enable_cache_report: bool = False
    skip_server_warmup: bool = False
    enable_mixed_chunk: bool = False
    disable_cuda_graph: bool = False
    disable_overlap_schedule: bool = False
    trust_remote_code: bool = False
    incremental_streaming_output: bool = False
    stream_response_default_include_usage: bool = False
    enable_hierarchical_cache: bool = False
    disaggregation_mode: Literal["null", "prefill", "decode"] = "null"
    disaggregation_bootstrap_port: int = Field(default=8998, ge=1, le=65535)
    disaggregation_transfer_backend: str = "mooncake"

    # ---- simulator flags (--sim-*)
    sim_profile: str | None = None
    sim_gpu: str = "H100-SXM"
    sim_jitter_cv: float = Field(default=0.05, ge=0)
    sim_ground_truth_log: Path | None = None
    sim_worker_id: str | None = None
    sim_get_load_format: Literal["list", "legacy", "absent"] = "list"
    sim_queue_overflow: Literal["unbounded", "429", "503"] = "503"
    sim_startup_delay_s: float = Field(default=0.0, ge=0)
    sim_fail_first_n: int = Field(default=0, ge=0)
    sim_fail_rate: float = Field(default=0.0, ge=0, le=1)
    sim_fail_status: int = Field(default=500, ge=400, le=599)
    sim_hang_after_n: int | None = Field(default=None, ge=0)
    sim_crash_after_requests: int | None = Field(default=None, ge=1)
    sim_crash_after_s: float | None = Field(default=None, ge=0)
    sim_health_fail_after_s: float | None = Field(default=None, ge=0)
    sim_slowdown: float = Field(default=1.0, gt=0)
    sim_kv_link_gbps: float = Field(default=400.0, gt=0)
    sim_kv_link_latency_ms: float = Field(default=0.5, ge=0)
    sim_pd_bootstrap_timeout_s: float = Field(default=300.0, gt=0)
    sim_pd_waiting_timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("dp_size")
    @classmethod
    def _one_rank(cls, v: int) -> int:
        if v != 1:
            raise ValueError("the simulator runs one data-parallel rank; launch several servers instead")
        return v

    @field_validator("chunked_prefill_size")
    @classmethod
    def _chunk_size(cls, v: int | None) -> int | None:
        if v is not None and v != -1 and v <= 0:
            raise ValueError("give a positive token count, or -1 to disable chunked prefill")
        return v

    @field_validator("schedule_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v not in ("fcfs", "lpm"):
            raise ValueError("the simulator implements fcfs and lpm; use one of them")
        return v

    @field_validator("sim_gpu")
    @classmethod
    def _gpu(cls, v: str) -> str:
        if v not in GPUS:
            raise ValueError(f"use one of {', '.join(GPUS)} (or --sim-profile with a YAML file for another GPU)")
        return v

    # ---- resolved values
    @property
    def model_name(self) -> str:
        """The name the API reports: ``--served-model-name``, else ``--model-path``."""
        return self.served_model_name or self.model_path

    @property
    def worker_id(self) -> str:
        """The ``X-Worker-Id`` header: ``--sim-worker-id``, else ``host:port``."""
        return self.sim_worker_id or f"{self.host}:{self.port}"

    @property
    def resolved_mem_fraction_static(self) -> float:
        """``--mem-fraction-static``, else 0.88."""
        return self.mem_fraction_static or DEFAULT_MEM_FRACTION_STATIC

    @property
    def resolved_chunked_prefill_size(self) -> int:
        """``--chunked-prefill-size`` (−1: no chunking), else 8192 (SGLang's value on H100/H200)."""
        return DEFAULT_CHUNKED_PREFILL_SIZE if self.chunked_prefill_size is None else self.chunked_prefill_size

    def latency_profile(self) -> LatencyProfile:
        """The step-time model: ``--sim-profile``, else the model in ``--model-path`` on ``--sim-gpu``.

        Raises:
            ValueError: the profile is unknown or its YAML file is missing or invalid.
        """
        return resolve_profile(self.sim_profile, self.model_path, self.sim_gpu, self.tp_size)

    @property
    def api_key_value(self) -> str | None:
        """The API key in clear (for the auth check only; never log or return it)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def public_args(self) -> dict[str, Any]:
        """SGLang's flags as ``/server_info`` reports them: ``--sim-*`` flags left out, the API key as ``***``."""
        out = self.model_dump(
            mode="json", exclude={name for name in type(self).model_fields if name.startswith("sim_")}
        )
        out["api_key"] = REDACTED if self.api_key is not None else None
        return out
