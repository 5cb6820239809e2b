"""Options of a stress run (``sglang-test stress``): which preset, how large, and the pass threshold."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel

__all__ = ["PresetName", "StressOptions"]

PresetName = Literal["high-concurrency", "sustained-load", "burst-traffic", "mixed-workload"]


class StressOptions(StrictModel):
    """``preset`` picks the scenario (docs/stress.md); ``scale`` multiplies its size (request count or
    duration, never its rates, so a smaller scale is a shorter run of the same shape); the run PASSes when
    its success rate (completed ÷ sent, whole run) is at least ``min_success_rate``."""

    preset: PresetName = Field(description="the stress scenario (docs/stress.md)")
    scale: float = Field(default=1.0, gt=0, le=1000, description="multiply the preset's request count or duration")
    min_success_rate: float = Field(
        default=0.8, ge=0, le=1, description="PASS when completed ÷ sent ≥ this share (0-1)"
    )
