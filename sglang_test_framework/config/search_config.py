"""Settings of the searches that run a series of probes on one server: the SLO search (highest rate
meeting SLOs) and the saturation sweep (the knee of the throughput–latency curve).

Each probe is a load sized by time: it lasts ``ramp_up_s + max(min_duration_s, floor / rate)`` seconds
(``floor`` = ``max(min_requests, num_prompts)`` when the base config gives ``num_prompts``; at least the
base's ``duration_s``) and is measured over ``measure_window: auto`` (docs/workloads.md).
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .workload import MAX_NUM_PROMPTS, MAX_REQUEST_RATE, MIN_REQUEST_RATE

__all__ = ["ProbeSettings", "SLOSearchConfig", "SaturationSweepConfig"]

SLO_KEYS = ("ttft", "tpot", "e2el")


class ProbeSettings(StrictModel):
    """How long each probe runs, and where the series writes (its own directory, claimed like a run)."""

    min_duration_s: float = Field(default=20.0, gt=0, le=86_400, description="each probe sends for at least this long")
    min_requests: int = Field(default=50, ge=1, le=MAX_NUM_PROMPTS, description="…and at least this many requests")
    max_drain_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="cancel requests still running this long after a probe's last arrival (at least its duration)",
    )
    output_dir: Path = Field(default=Path("results/search"), description="the series' own directory")

    def probe_duration_s(
        self, rate: float, ramp_up_s: float, num_prompts: int | None, base_duration_s: float | None
    ) -> float:
        """Seconds a probe at ``rate`` sends for (module docstring)."""
        floor = max(self.min_requests, num_prompts or 0)
        measured = max(self.min_duration_s, floor / rate)
        return max(base_duration_s or 0.0, ramp_up_s + measured)

    def drain_s(self, duration_s: float) -> float:
        """The drain allowed after a probe of ``duration_s``: ``max_drain_s``, at least the probe's length."""
        return max(self.max_drain_s, duration_s)


class SLOSearchConfig(ProbeSettings):
    """The highest request rate whose probes meet the SLOs without saturating the server.

    The rate doubles from ``start_rate`` until a probe over-saturates the server, two probes in a row
    miss the SLOs (attainment below the target) or ``max_rate`` ran; the lowest failing rate is probed
    again if it failed without saturating; then ``bisect_steps`` probes halve the bracket between the
    highest passing and the lowest failing rate. A rate's verdict is the majority of its probes; when a
    higher rate passed although a lower one failed (or a rate's probes tie), they are probed again
    (fresh seeds, up to ``max_reprobes`` more each) before bisecting; ``confirm`` probes the answer once
    more at the end.
    """

    slos_ms: dict[str, float] = Field(min_length=1, description="SLOs in ms: ttft, tpot, e2el")
    target_attainment: float = Field(default=0.9, gt=0, le=1, description="share of requests meeting every SLO")
    start_rate: float = Field(default=1.0, ge=MIN_REQUEST_RATE, le=MAX_REQUEST_RATE)
    max_rate: float = Field(default=1024.0, ge=MIN_REQUEST_RATE, le=MAX_REQUEST_RATE)
    bisect_steps: int = Field(default=4, ge=0, le=30)
    max_reprobes: int = Field(default=2, ge=0, le=10, description="extra probes of one rate to settle a contradiction")
    confirm: bool = Field(default=True, description="probe the answer once more with a fresh seed")
    output_dir: Path = Field(default=Path("results/slo_search"), description="the search's own directory")

    @field_validator("slos_ms")
    @classmethod
    def _slos(cls, slos: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(slos) - set(SLO_KEYS))
        if unknown:
            raise ValueError(f"unknown SLO keys {unknown}; use ttft, tpot or e2el in milliseconds, e.g. ttft:500")
        bad = [k for k, v in slos.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"{bad[0]}: an SLO is a positive number of milliseconds, e.g. {bad[0]}:500")
        return slos

    @model_validator(mode="after")
    def _rates(self) -> SLOSearchConfig:
        if self.start_rate > self.max_rate:
            raise ValueError(f"start_rate: {self.start_rate:g} is above max_rate ({self.max_rate:g}); lower it")
        return self


class SaturationSweepConfig(ProbeSettings):
    """From a low rate up to saturation: first a burst (``request_rate=inf``) measures the server's
    throughput C; then ``steps`` probes at rates evenly spaced from ``low_fraction``·C to
    ``high_fraction``·C, stopping after ``stop_after_saturated`` over-saturated steps. The knee is the
    step with the highest achieved rate that was not over-saturated."""

    steps: int = Field(default=6, ge=2, le=100)
    low_fraction: float = Field(default=0.1, gt=0, le=10, description="first step's rate ÷ burst throughput")
    high_fraction: float = Field(default=1.2, gt=0, le=10, description="last step's rate ÷ burst throughput")
    capacity_requests: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NUM_PROMPTS,
        description="requests of the burst (default: max(min_requests, 4 × max_running_requests))",
    )
    stop_after_saturated: int = Field(default=1, ge=1, le=100, description="stop after this many saturated steps")
    output_dir: Path = Field(default=Path("results/saturation"), description="the sweep's own directory")

    @model_validator(mode="after")
    def _fractions(self) -> SaturationSweepConfig:
        if self.low_fraction >= self.high_fraction:
            raise ValueError(
                f"low_fraction: {self.low_fraction:g} must be below high_fraction ({self.high_fraction:g})"
            )
        return self
