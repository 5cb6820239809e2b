"""Latency profiles: a roofline step-time model (weights + KV bytes vs bandwidth, FLOPs vs peak) plus
fixed per-step and per-request overheads. See docs/simulator.md for the formulas and calibration."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["GPUS", "MODELS", "GPUSpec", "LatencyProfile", "ModelSpec", "load_profile", "resolve_profile"]

GIB = 1024**3

SpecT = TypeVar("SpecT", "GPUSpec", "ModelSpec")


@dataclass(frozen=True)
class GPUSpec:
    """Datasheet numbers of one GPU."""

    name: str
    peak_flops: float  # dense BF16 FLOP/s
    mem_bw: float  # HBM bytes/s
    mem_bytes: float


@dataclass(frozen=True)
class ModelSpec:
    """The model constants the roofline needs."""

    name: str
    n_layers: int
    d_model: int
    n_kv_heads: int
    head_dim: int
    params_nonemb: float
    params_lmhead: float
    context_len: int
    bytes_per_param: float = 2.0
    kv_lora_rank: int = 0  # MLA (DeepSeek): latent rank; 0 = MHA/GQA
    qk_rope_head_dim: int = 0  # MLA: decoupled RoPE key dimension

    @property
    def kv_bytes_per_token(self) -> float:
        """MHA/GQA: K and V for every layer, 2 · L · n_kv_heads · head_dim · bytes; MLA: one latent per
        layer, L · (kv_lora_rank + qk_rope_head_dim) · bytes."""
        if self.kv_lora_rank:
            return self.n_layers * (self.kv_lora_rank + self.qk_rope_head_dim) * self.bytes_per_param
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * self.bytes_per_param

    @property
    def weight_bytes(self) -> float:
        """Weights read per forward pass."""
        return (self.params_nonemb + self.params_lmhead) * self.bytes_per_param


GPUS = {
    "H100-SXM": GPUSpec("H100-SXM", 989.5e12, 3.35e12, 80 * GIB),
    "A100-80G": GPUSpec("A100-80G", 312e12, 2.039e12, 80 * GIB),
    "H200": GPUSpec("H200", 989.5e12, 4.8e12, 141 * GIB),
}
MODELS = {
    "Llama-3-8B": ModelSpec("Llama-3-8B", 32, 4096, 8, 128, 6.98e9, 0.53e9, 8192),
    "Llama-2-7B": ModelSpec("Llama-2-7B", 32, 4096, 32, 128, 6.48e9, 0.13e9, 4096),
}


@dataclass(frozen=True)
class LatencyProfile:
    """Step-time model of one server (a model on ``tp_size`` GPUs).

    Prefill step: max(F_p / (peak·MFU_p), B_p / (bw·MBU)) + T_step + T_req·n_reqs, with
    F_p = 2·P_nonemb·N_new + Σ 4·L·d·(n_new·n_cached + n_new²/2) + 2·P_lmhead·n_reqs and
    B_p = W + KV_tok·Σ(n_cached + n_new). Decode step: max(F_d / (peak·MFU_d), (W + KV_tok·Σctx) / (bw·MBU))
    + T_step + T_req·B with F_d = B·2·(P_nonemb + P_lmhead) + 4·L·d·Σctx. TP divides the work over
    ``tp_size`` GPUs at ``tp_efficiency``.
    """

    model: ModelSpec
    gpu: GPUSpec
    tp_size: int = 1
    mfu_prefill: float = 0.55
    mfu_decode: float = 0.5
    mbu: float = 0.75
    t_step_s: float = 1.0e-3
    t_req_s: float = 4.0e-6
    tp_efficiency: float = 0.85
    host_bw: float = 20e9  # HiCache load-back bandwidth (bytes/s), host → device

    @property
    def name(self) -> str:
        """e.g. ``Llama-3-8B@H100-SXM``."""
        return f"{self.model.name}@{self.gpu.name}" + (f"x{self.tp_size}" if self.tp_size > 1 else "")

    def _scale(self) -> float:
        return 1.0 if self.tp_size == 1 else self.tp_size * self.tp_efficiency

    def prefill_time_s(self, new_tokens: list[int], cached_tokens: list[int]) -> float:
        """Seconds for one prefill (extend) batch."""
        m = self.model
        n_new = sum(new_tokens)
        attn = sum(
            4 * m.n_layers * m.d_model * (n * c + n * n / 2) for n, c in zip(new_tokens, cached_tokens, strict=True)
        )
        flops = 2 * m.params_nonemb * n_new + attn + 2 * m.params_lmhead * len(new_tokens)
        nbytes = m.weight_bytes + m.kv_bytes_per_token * (n_new + sum(cached_tokens))
        scale = self._scale()
        compute = flops / (self.gpu.peak_flops * self.mfu_prefill * scale)
        memory = nbytes / (self.gpu.mem_bw * self.mbu * scale)
        return max(compute, memory) + self.t_step_s + self.t_req_s * len(new_tokens)

    def decode_time_s(self, batch: int, sum_ctx: int) -> float:
        """Seconds for one decode step of ``batch`` requests holding ``sum_ctx`` KV tokens in total."""
        m = self.model
        flops = batch * 2 * (m.params_nonemb + m.params_lmhead) + 4 * m.n_layers * m.d_model * sum_ctx
        nbytes = m.weight_bytes + m.kv_bytes_per_token * sum_ctx
        scale = self._scale()
        compute = flops / (self.gpu.peak_flops * self.mfu_decode * scale)
        memory = nbytes / (self.gpu.mem_bw * self.mbu * scale)
        return max(compute, memory) + self.t_step_s + self.t_req_s * batch

    def load_back_time_s(self, tokens: int) -> float:
        """Seconds to copy ``tokens`` of KV from host memory (HiCache) to the GPU."""
        return tokens * self.model.kv_bytes_per_token / self.host_bw

    def kv_capacity_tokens(self, mem_fraction_static: float) -> int:
        """KV pool size: (GPU memory · tp · fraction − weights) / KV bytes per token."""
        free = self.gpu.mem_bytes * self.tp_size * mem_fraction_static - self.model.weight_bytes
        return max(0, int(free / self.model.kv_bytes_per_token))


def _model_from_path(model_path: str) -> ModelSpec:
    p = model_path.lower().replace("_", "-")
    if "llama-2" in p or "llama2" in p:
        return MODELS["Llama-2-7B"]
    return MODELS["Llama-3-8B"]


def load_profile(path: str | Path, tp_size: int = 1) -> LatencyProfile:
    """A profile from YAML: ``model: {name, n_layers, …}`` or ``model: Llama-3-8B``, ``gpu: {…}`` or a
    GPU name, and any LatencyProfile coefficient (mfu_prefill, mbu, t_step_s, t_req_s, …)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"profile {path}: cannot read it as YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"profile {path}: must be a mapping of coefficient: value")
    model_spec = _spec(path, "model", data.pop("model", "Llama-3-8B"), MODELS, ModelSpec)
    gpu_spec = _spec(path, "gpu", data.pop("gpu", "H100-SXM"), GPUS, GPUSpec)
    allowed = {f.name for f in fields(LatencyProfile)} - {"model", "gpu", "tp_size"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"profile {path}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return LatencyProfile(model=model_spec, gpu=gpu_spec, tp_size=tp_size, **data)


def _spec(path: str | Path, key: str, value: Any, builtin: dict[str, SpecT], cls: type[SpecT]) -> SpecT:
    """A built-in spec by name, or one built from a mapping of its fields."""
    if isinstance(value, str):
        if value not in builtin:
            raise ValueError(
                f"profile {path}: {key} {value!r} is not built in; use one of {sorted(builtin)} or a mapping"
            )
        return builtin[value]
    names = [f.name for f in fields(cls)]
    if not isinstance(value, dict) or not set(value) <= set(names):
        raise ValueError(f"profile {path}: {key} must be a built-in name or a mapping with keys from {names}")
    try:
        return cls(**value)
    except TypeError as exc:
        raise ValueError(f"profile {path}: {key}: {exc}") from exc


def resolve_profile(profile: str | None, model_path: str, gpu: str, tp_size: int) -> LatencyProfile:
    """``--sim-profile`` (a YAML path or ``Model@GPU``), else the model named in ``--model-path`` on ``gpu``."""
    if profile and (profile.endswith((".yaml", ".yml")) or Path(profile).is_file()):
        return load_profile(profile, tp_size)
    if gpu not in GPUS:
        raise ValueError(f"--sim-gpu {gpu!r}: use one of {', '.join(GPUS)}")
    base = LatencyProfile(model=_model_from_path(model_path), gpu=GPUS[gpu], tp_size=tp_size)
    if profile:
        model_name, _, gpu_name = profile.partition("@")
        if model_name not in MODELS or (gpu_name and gpu_name not in GPUS):
            raise ValueError(
                f"--sim-profile {profile!r}: use MODEL@GPU with MODEL in {sorted(MODELS)} and GPU "
                f"in {sorted(GPUS)}, or a YAML file"
            )
        base = replace(base, model=MODELS[model_name], gpu=GPUS[gpu_name] if gpu_name else base.gpu)
    return base
