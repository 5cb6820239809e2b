"""The shape of a load over time: duration, linear ramp-up, stages (:mod:`.stages`) and the measurement
window.

The arrival intensity (requests/s) of a workload with ``request_rate`` r, ``ramp_up_s`` T and
``ramp_up_start_rate`` r₀ is λ(t) = r₀ + (r − r₀)·t/T for t < T, then r. Its integral Λ(t) (the expected
number of arrivals by t) sizes a duration-based load, and its inverse maps the arrivals of a unit-rate
process onto the ramp (:mod:`..load.request_generator`). Validation errors are one line naming the
field and the fix (raised as ``ValueError`` inside the config's validator).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .stages import segments, stage_arrivals, stages_duration_s, user_windows

if TYPE_CHECKING:
    from .workload import WorkloadConfig

__all__ = [
    "AUTO_SETTLE_FRACTION",
    "MeasureWindowSpec",
    "check_load_shape",
    "expected_arrivals",
    "inverse_expected_arrivals",
    "parse_measure_window",
]

MeasureWindowSpec = Literal["all", "auto"] | tuple[float, float]
"""``all`` (every request), ``auto`` (after the ramp-up, before the drain) or ``(start_s, end_s)``."""

AUTO_SETTLE_FRACTION = 0.1
"""Without a ramp-up, ``measure_window: auto`` leaves out this share of the load phase at its start (the
server filling up from idle)."""

_MAX_NUM_PROMPTS = 10_000_000  # config.workload.MAX_NUM_PROMPTS (not imported: workload imports this module)


def expected_arrivals(t_s: float, rate: float, ramp_up_s: float = 0.0, start_rate: float = 0.0) -> float:
    """Λ(t): expected arrivals in [0, t_s) = ∫₀ᵗ λ(u) du for the ramped intensity (module docstring)."""
    if ramp_up_s <= 0:
        return rate * t_s
    ramp_t = min(t_s, ramp_up_s)
    ramped = start_rate * ramp_t + (rate - start_rate) * ramp_t * ramp_t / (2 * ramp_up_s)
    return ramped + rate * max(0.0, t_s - ramp_up_s)


def inverse_expected_arrivals(
    events: npt.NDArray[np.float64], rate: float, ramp_up_s: float = 0.0, start_rate: float = 0.0
) -> npt.NDArray[np.float64]:
    """Λ⁻¹: the times t at which Λ(t) equals each value of ``events`` (vectorised).

    On the ramp, Λ(t) = r₀·t + a·t² with a = (r − r₀)/(2T), so t = 2e / (r₀ + √(r₀² + 4ae)), a form that
    stays exact for a = 0 and for r₀ = 0; after the ramp t = T + (e − Λ(T)) / r.
    """
    if ramp_up_s <= 0:
        return events / rate
    a = (rate - start_rate) / (2 * ramp_up_s)
    at_ramp_end = expected_arrivals(ramp_up_s, rate, ramp_up_s, start_rate)
    on_ramp = events <= at_ramp_end
    e = np.where(on_ramp, events, 0.0)
    root = start_rate + np.sqrt(start_rate * start_rate + 4 * a * e)
    ramp_t = np.divide(2 * e, root, out=np.zeros_like(e), where=root > 0)
    after = ramp_up_s + (events - at_ramp_end) / rate
    return np.where(on_ramp, ramp_t, after)


def parse_measure_window(value: Any) -> Any:
    """``"START,END"`` or ``"START:END"`` (the command line) and ``[start, end]`` (YAML) → a tuple of
    floats; anything else is left for the field's type to check."""
    if isinstance(value, str) and value not in ("all", "auto"):
        parts = value.replace(":", ",").split(",")
        if len(parts) != 2:
            raise ValueError("use all, auto, or START,END in seconds from the load start, e.g. 10,60")
        try:
            return (float(parts[0]), float(parts[1]))
        except ValueError:
            raise ValueError("use all, auto, or START,END in seconds from the load start, e.g. 10,60") from None
    if isinstance(value, list):
        return tuple(value)
    return value


def _check_window(cfg: WorkloadConfig) -> None:
    window = cfg.measure_window
    if isinstance(window, tuple):
        start, end = window
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
            raise ValueError(
                f"measure_window: [{start}, {end}] must be two finite seconds with 0 ≤ start < end, e.g. [10, 60]"
            )
        if cfg.duration_s is not None and start >= cfg.duration_s:
            raise ValueError(
                f"measure_window: starts at {start} s, after the load ends (duration_s={cfg.duration_s}); "
                "start it earlier or send for longer"
            )
    if window != "all" and math.isinf(cfg.request_rate) and not cfg.stages and cfg.virtual_users is None:
        raise ValueError(
            "measure_window: needs a finite request_rate (request_rate=inf sends everything at t=0, so there "
            "is no load phase to cut); set request_rate or use measure_window='all'"
        )


def _check_ramp(cfg: WorkloadConfig) -> None:
    if cfg.ramp_up_s <= 0 or cfg.virtual_users is not None:  # virtual users join over the ramp-up instead
        return
    if math.isinf(cfg.request_rate):
        raise ValueError("ramp_up_s: needs a finite request_rate to ramp up to, e.g. --request-rate 10")
    if cfg.ramp_up_start_rate > cfg.request_rate:
        raise ValueError(
            f"ramp_up_start_rate: {cfg.ramp_up_start_rate:g} req/s is above request_rate "
            f"({cfg.request_rate:g}); a ramp-up rises to request_rate"
        )
    if cfg.duration_s is not None and cfg.duration_s <= cfg.ramp_up_s:
        raise ValueError(
            f"duration_s: {cfg.duration_s:g} s ends within the ramp-up (ramp_up_s={cfg.ramp_up_s:g}); "
            "make duration_s longer than ramp_up_s so that a measured window remains"
        )


def _duration_count(cfg: WorkloadConfig, duration_s: float, explicit_num_prompts: bool) -> int:
    if math.isinf(cfg.request_rate):
        raise ValueError(
            "duration_s: needs a finite request_rate (request_rate=inf sends every request at t=0, so there is "
            "no duration to fill); set request_rate, e.g. --request-rate 10, or size the load with num_prompts"
        )
    if cfg.dataset_request_count() is not None:
        fix = (
            "use gsp_group_distribution='zipf' to draw request_rate × duration_s requests"
            if cfg.dataset_name == "generated-shared-prefix"
            else "multi-turn conversations set their own count and timing; size them with multi_turn_* fields"
        )
        raise ValueError(f"duration_s: {cfg.dataset_name} defines its own request count; omit duration_s or {fix}")
    expected = expected_arrivals(duration_s, cfg.request_rate, cfg.ramp_up_s, cfg.ramp_up_start_rate)
    if expected > _MAX_NUM_PROMPTS:
        raise ValueError(f"duration_s: request_rate × duration_s = {expected:g} requests; keep it ≤ {_MAX_NUM_PROMPTS}")
    count = max(1, round(expected))
    if explicit_num_prompts and cfg.num_prompts != count:
        raise ValueError(
            f"num_prompts: duration_s={duration_s:g} s at request_rate={cfg.request_rate:g} req/s sends {count} "
            f"requests, not {cfg.num_prompts}; give num_prompts or duration_s, not both"
        )
    return count


def _check_user_stages(cfg: WorkloadConfig, users: int) -> None:
    segs = segments(cfg.stages)
    values = [v for seg in segs for v in seg[2:]]
    if any(v != int(v) for v in values):
        raise ValueError("stages: virtual-user stages count users; use whole numbers")
    if max(values) != users:
        raise ValueError(f"virtual_users: {users}, but the stages reach {max(values):g} users; make them equal")
    falling = any(b < a for a, b in itertools.pairwise(values))
    if falling and not any(user_windows(segs, u) for u in range(users)):
        raise ValueError("stages: no user is active for any length of time; give some stage a constant user count")


def _check_stages(cfg: WorkloadConfig, explicit: set[str]) -> int | None:
    """Validate ``stages``; the request count a rate schedule defines (None when something else sizes it)."""
    if cfg.virtual_users is not None:
        _check_user_stages(cfg, cfg.virtual_users)
        return None
    for name, given, why in (  # values a saved config.yaml holds for "not set" are accepted
        ("request_rate", math.isfinite(cfg.request_rate), "the stages set the rate"),
        ("ramp_up_s", cfg.ramp_up_s > 0, "use a ramp stage"),
        ("duration_s", cfg.duration_s is not None, "the stages set the duration"),
    ):
        if given:
            raise ValueError(f"{name}: not with stages ({why}); omit {name}")
    total = stage_arrivals(segments(cfg.stages), stages_duration_s(cfg.stages))
    if total <= 0:
        raise ValueError("stages: the schedule sends no request (every rate is 0); give some stage a rate > 0")
    if total > _MAX_NUM_PROMPTS:
        raise ValueError(f"stages: the schedule sends {total:g} requests; keep it ≤ {_MAX_NUM_PROMPTS}")
    if "num_prompts" in explicit or cfg.dataset_request_count() is not None:
        return None  # that many arrivals (or session starts) follow the schedule's shape
    return max(1, round(total))


def check_load_shape(cfg: WorkloadConfig, explicit_num_prompts: bool) -> int | None:
    """Validate ``duration_s``, the ramp-up and ``measure_window`` of ``cfg``; returns the request count
    that ``duration_s`` defines (None without one).

    Raises:
        ValueError: One line naming the field and the fix.
    """
    if cfg.stages:
        _check_window(cfg)
        explicit = set(cfg.model_fields_set) if explicit_num_prompts else set(cfg.model_fields_set) - {"num_prompts"}
        return _check_stages(cfg, explicit)
    _check_ramp(cfg)
    _check_window(cfg)
    if cfg.duration_s is not None:
        return _duration_count(cfg, cfg.duration_s, explicit_num_prompts)
    if cfg.ramp_up_s > 0 and cfg.virtual_users is None:
        ramp = expected_arrivals(cfg.ramp_up_s, cfg.request_rate, cfg.ramp_up_s, cfg.ramp_up_start_rate)
        if cfg.num_prompts <= ramp:
            raise ValueError(
                f"num_prompts: the ramp-up alone sends about {ramp:.0f} requests, so all {cfg.num_prompts} arrive "
                "before it ends; raise num_prompts or size the load with duration_s"
            )
    return None
