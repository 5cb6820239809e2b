"""The PD models of the simulator: the KV link of a prefill worker (bytes per token from the model
profile, TP-aware) and the PD metrics with SGLang's names (docs/pd.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .metrics import Histogram
from .profiles import ModelSpec

__all__ = ["KVLink", "PDStats", "kv_link"]

LATENCY_MS_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
SPEED_GB_S_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 400)
TOTAL_MB_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 5000, 10000)
STAGE_S_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
GIB = 1024**3


@dataclass(frozen=True)
class KVLink:
    """The KV transfer model of one prefill worker: per-TP-rank bytes per token over per-rank links."""

    bytes_per_token: float  # the whole KV of one token (what is reported as moved)
    bytes_per_rank_token: float  # what one TP rank sends (MHA heads split over ranks; MLA: the full latent)
    rate_bytes_s: float  # one rank's link
    latency_s: float

    def busy_s(self, tokens: int) -> float:
        """Link occupancy of one transfer (bandwidth term only)."""
        return tokens * self.bytes_per_rank_token / self.rate_bytes_s

    def transfer_s(self, tokens: int) -> float:
        """Modelled transfer time of ``tokens`` prompt tokens on an idle link: latency + bytes ÷ rate."""
        return self.latency_s + self.busy_s(tokens)


def kv_link(model: ModelSpec, tp_size: int, gbps: float, latency_ms: float) -> KVLink:
    """The link model from the model profile, TP size and ``--sim-kv-link-*`` flags."""
    if model.kv_lora_rank:
        per_rank = model.kv_bytes_per_token  # MLA: every rank holds the same latent
    else:
        heads = math.ceil(model.n_kv_heads / tp_size)  # KV heads split over ranks (replicated if fewer)
        per_rank = 2 * model.n_layers * heads * model.head_dim * model.bytes_per_param
    return KVLink(model.kv_bytes_per_token, per_rank, gbps * 1e9 / 8, latency_ms / 1e3)


@dataclass
class PDStats:
    """PD metrics with SGLang's names (``/metrics`` and the ``disaggregation`` section of ``/v1/loads``)."""

    mode: str
    bootstrap_failed: int = 0
    transfer_failed: int = 0
    latency_ms: Histogram = field(default_factory=lambda: Histogram(LATENCY_MS_BUCKETS))
    speed_gb_s: Histogram = field(default_factory=lambda: Histogram(SPEED_GB_S_BUCKETS))
    total_mb: Histogram = field(default_factory=lambda: Histogram(TOTAL_MB_BUCKETS))
    bootstrap_ms: Histogram = field(default_factory=lambda: Histogram(LATENCY_MS_BUCKETS))
    stages: dict[str, Histogram] = field(default_factory=dict)
    last_latency_ms: float = 0.0
    last_speed_gb_s: float = 0.0

    def stage(self, name: str, seconds: float) -> None:
        """Observe ``sglang:per_stage_req_latency_seconds{stage=name}``."""
        self.stages.setdefault(name, Histogram(STAGE_S_BUCKETS)).observe(max(seconds, 0.0))

    def transfer(self, nbytes: float, start_ns: int, end_ns: int) -> None:
        """Observe one finished KV transfer."""
        seconds = max((end_ns - start_ns) / 1e9, 1e-9)
        self.last_latency_ms = seconds * 1e3
        self.last_speed_gb_s = nbytes / seconds / GIB
        self.latency_ms.observe(self.last_latency_ms)
        self.speed_gb_s.observe(self.last_speed_gb_s)
        self.total_mb.observe(nbytes / 2**20)

    def lines(self, labels: str) -> list[str]:
        """Exposition lines of the counters and histograms."""
        out: list[str] = []
        for name, value in (
            ("num_bootstrap_failed_reqs_total", self.bootstrap_failed),
            ("num_transfer_failed_reqs_total", self.transfer_failed),
        ):
            out += [
                f"# HELP sglang:{name} {name}",
                f"# TYPE sglang:{name} counter",
                f"sglang:{name}{{{labels}}} {value}",
            ]
        for name, hist in (
            ("kv_transfer_latency_ms", self.latency_ms),
            ("kv_transfer_speed_gb_s", self.speed_gb_s),
            ("kv_transfer_total_mb", self.total_mb),
            ("kv_transfer_bootstrap_ms", self.bootstrap_ms),
        ):
            out += [f"# HELP sglang:{name} {name}", f"# TYPE sglang:{name} histogram"]
            out += hist.lines(f"sglang:{name}", labels)
        name = "per_stage_req_latency_seconds"
        out += [f"# HELP sglang:{name} {name}", f"# TYPE sglang:{name} histogram"]
        for stage, hist in sorted(self.stages.items()):
            out += hist.lines(f"sglang:{name}", f'{labels},stage="{stage}"')
        return out
