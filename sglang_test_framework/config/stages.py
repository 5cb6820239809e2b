"""Load stages: a schedule of the request rate (or of the number of virtual users) over time.

A workload's ``stages`` run one after another; each is one of

============  =======================================  ================================================
kind          fields                                   value over the stage (t from the stage's start)
============  =======================================  ================================================
``constant``  ``value``                                ``value``
``ramp``      ``start``, ``end``                       linear from ``start`` to ``end``
``step``      ``start``, ``end``, ``steps``            a staircase of ``steps`` equal steps, ``start`` … ``end``
``burst``     ``low``, ``high``, ``on_s``, ``off_s``   ``high`` for ``on_s``, then ``low`` for ``off_s``, repeated
``zigzag``    ``low``, ``high``, ``period_s``          a triangle wave ``low`` → ``high`` → ``low`` per period
============  =======================================  ================================================

and lasts ``duration_s``. The value is requests/s (rate stages) or users (with ``virtual_users``).

On the command line: ``--stages "ramp:0-50:30s,constant:50:60s,burst:10/100:5s/5s:60s"`` — one
``KIND:VALUES:DURATION`` item per stage (``constant:V:D``, ``ramp:A-B:D``, ``step:A-B/N:D``,
``burst:LOW/HIGH:ON/OFF:D``, ``zigzag:LOW/HIGH:PERIOD:D``); times take ``s``, ``m`` or ``h`` (bare
numbers are seconds).

Every stage compiles to linear segments ``(t0, t1, v0, v1)`` (:func:`segments`). For rates, their
integral Λ(t) (:func:`stage_arrivals`) sizes the load and its inverse (:func:`inverse_stage_arrivals`)
maps a unit-rate arrival process onto the schedule (:mod:`..load.request_generator`). For users,
user ``u`` is active while the schedule is at least ``u + 1`` (:func:`user_windows`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from .base import StrictModel

__all__ = [
    "LoadStage",
    "Segment",
    "format_stages",
    "inverse_stage_arrivals",
    "parse_stages",
    "peak_value",
    "segments",
    "stage_arrivals",
    "stages_duration_s",
    "user_windows",
]

StageKind = Literal["constant", "ramp", "step", "burst", "zigzag"]
Segment = tuple[float, float, float, float]
"""``(t0_s, t1_s, value_at_t0, value_at_t1)``, linear in between."""

_MAX_VALUE = 1e9
_MAX_SEGMENTS = 1_000_000
_NEEDS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "ramp": ("start", "end"),
    "step": ("start", "end", "steps"),
    "burst": ("low", "high", "on_s", "off_s"),
    "zigzag": ("low", "high", "period_s"),
}
_FORMS = {
    "constant": "constant:VALUE:DURATION",
    "ramp": "ramp:START-END:DURATION",
    "step": "step:START-END/STEPS:DURATION",
    "burst": "burst:LOW/HIGH:ON/OFF:DURATION",
    "zigzag": "zigzag:LOW/HIGH:PERIOD:DURATION",
}


class LoadStage(StrictModel):
    """One stage of a load schedule (module docstring)."""

    kind: StageKind
    duration_s: float = Field(gt=0, le=30 * 86_400)
    value: float | None = Field(default=None, ge=0, le=_MAX_VALUE)
    start: float | None = Field(default=None, ge=0, le=_MAX_VALUE)
    end: float | None = Field(default=None, ge=0, le=_MAX_VALUE)
    steps: int | None = Field(default=None, gt=0, le=100_000)
    low: float | None = Field(default=None, ge=0, le=_MAX_VALUE)
    high: float | None = Field(default=None, ge=0, le=_MAX_VALUE)
    on_s: float | None = Field(default=None, gt=0, le=86_400)
    off_s: float | None = Field(default=None, gt=0, le=86_400)
    period_s: float | None = Field(default=None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> LoadStage:
        needed = _NEEDS[self.kind]
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} stage needs {', '.join(missing)}; write it as {_FORMS[self.kind]}")
        extra = [
            f
            for f in ("value", "start", "end", "steps", "low", "high", "on_s", "off_s", "period_s")
            if f not in needed and getattr(self, f) is not None
        ]
        if extra:
            raise ValueError(f"a {self.kind} stage takes no {', '.join(extra)}; write it as {_FORMS[self.kind]}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"a {self.kind} stage needs low ≤ high, got {self.low:g} > {self.high:g}")
        return self


def _seconds(text: str, item: str) -> float:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smh]?)\s*", text)
    if match is None:
        raise ValueError(f"{item!r}: {text!r} is not a time; write e.g. 30s, 2m, 1h or 45")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _number(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{item!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{item!r}: {text!r} is not a finite number")
    return value


def _pair(text: str, sep: str, item: str, kind: str) -> tuple[str, str]:
    parts = text.split(sep)
    if len(parts) != 2:
        raise ValueError(f"{item!r}: write a {kind} stage as {_FORMS[kind]}")
    return parts[0], parts[1]


def _parse_item(item: str) -> dict[str, Any]:
    """One ``KIND:VALUES:DURATION`` item → the fields of a :class:`LoadStage`."""
    kind, *parts = item.strip().split(":")
    if kind not in _FORMS:
        raise ValueError(f"{item!r}: unknown stage kind {kind!r}; use one of {', '.join(_FORMS)}")
    sizes = {"constant": 2, "ramp": 2, "step": 2, "burst": 3, "zigzag": 3}
    if len(parts) != sizes[kind]:
        raise ValueError(f"{item!r}: write a {kind} stage as {_FORMS[kind]}")
    out: dict[str, Any] = {"kind": kind, "duration_s": _seconds(parts[-1], item)}
    if kind == "constant":
        out["value"] = _number(parts[0], item)
    elif kind in ("ramp", "step"):
        span, steps = _pair(parts[0], "/", item, kind) if kind == "step" else (parts[0], None)
        start, end = _pair(span, "-", item, kind)
        out.update(start=_number(start, item), end=_number(end, item))
        if steps is not None:
            out["steps"] = int(_number(steps, item))
    else:
        low, high = _pair(parts[0], "/", item, kind)
        out.update(low=_number(low, item), high=_number(high, item))
        if kind == "burst":
            on, off = _pair(parts[1], "/", item, kind)
            out.update(on_s=_seconds(on, item), off_s=_seconds(off, item))
        else:
            out["period_s"] = _seconds(parts[1], item)
    return out


def parse_stages(value: Any) -> Any:
    """The command-line form (a string, or a list of strings, of comma-separated items) → a list of stage
    dicts; YAML lists of objects pass through to the model. ValueError names the bad item."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and any(isinstance(v, str) for v in value):
        out: list[Any] = []
        for v in value:
            if isinstance(v, str):
                out += [_parse_item(item) for item in v.split(",") if item.strip()]
            else:
                out.append(v)
        return out
    return value


def _g(x: float | int | None) -> str:
    return f"{x:g}"


def format_stages(stages: list[LoadStage]) -> str:
    """The schedule in the compact command-line syntax (for reports); ``""`` without stages."""
    items = []
    for s in stages:
        d = _g(s.duration_s) + "s"
        if s.kind == "constant":
            items.append(f"constant:{_g(s.value)}:{d}")
        elif s.kind == "ramp":
            items.append(f"ramp:{_g(s.start)}-{_g(s.end)}:{d}")
        elif s.kind == "step":
            items.append(f"step:{_g(s.start)}-{_g(s.end)}/{s.steps}:{d}")
        elif s.kind == "burst":
            items.append(f"burst:{_g(s.low)}/{_g(s.high)}:{_g(s.on_s)}s/{_g(s.off_s)}s:{d}")
        else:
            items.append(f"zigzag:{_g(s.low)}/{_g(s.high)}:{_g(s.period_s)}s:{d}")
    return ",".join(items)


def peak_value(stages: list[LoadStage]) -> float:
    """The schedule's highest rate (req/s) or user count; 0 without stages (e.g. to size client processes)."""
    return max((max(seg[2], seg[3]) for seg in segments(stages)), default=0.0)


def stages_duration_s(stages: list[LoadStage]) -> float:
    """Total length of the schedule (s)."""
    return sum(s.duration_s for s in stages)


def _stage_segments(stage: LoadStage, t0: float) -> list[Segment]:
    d = stage.duration_s
    if stage.kind == "constant":
        v = float(stage.value or 0.0)
        return [(t0, t0 + d, v, v)]
    if stage.kind == "ramp":
        return [(t0, t0 + d, float(stage.start or 0.0), float(stage.end or 0.0))]
    if stage.kind == "step":
        n, a, b = int(stage.steps or 1), float(stage.start or 0.0), float(stage.end or 0.0)
        width = d / n
        levels = [a + (b - a) * i / (n - 1) if n > 1 else b for i in range(n)]
        return [(t0 + i * width, t0 + (i + 1) * width, v, v) for i, v in enumerate(levels)]
    low, high = float(stage.low or 0.0), float(stage.high or 0.0)
    out: list[Segment] = []
    t, end = t0, t0 + d
    if stage.kind == "burst":
        pattern = [(float(stage.on_s or 0.0), high, high), (float(stage.off_s or 0.0), low, low)]
    else:
        half = float(stage.period_s or 0.0) / 2
        pattern = [(half, low, high), (half, high, low)]
    while t < end and len(out) < _MAX_SEGMENTS:
        for length, v0, v1 in pattern:
            t1 = min(t + length, end)
            frac = (t1 - t) / length
            out.append((t, t1, v0, v0 + (v1 - v0) * frac))
            t = t1
            if t >= end:
                break
    if len(out) >= _MAX_SEGMENTS:
        raise ValueError(f"stages: a {stage.kind} stage of {d:g} s has over {_MAX_SEGMENTS} phases; lengthen them")
    return out


def segments(stages: list[LoadStage]) -> list[Segment]:
    """The schedule as consecutive linear segments from t=0 (module docstring)."""
    out: list[Segment] = []
    t = 0.0
    for stage in stages:
        out += _stage_segments(stage, t)
        t += stage.duration_s
    return out


def _tables(segs: list[Segment]) -> tuple[npt.NDArray[np.float64], ...]:
    t0 = np.array([s[0] for s in segs])
    dt = np.array([s[1] - s[0] for s in segs])
    v0 = np.array([s[2] for s in segs])
    v1 = np.array([s[3] for s in segs])
    area = (v0 + v1) / 2 * dt
    return t0, dt, v0, v1, np.concatenate([[0.0], np.cumsum(area)])


def stage_arrivals(segs: list[Segment], t_s: float) -> float:
    """Λ(t): the integral of the scheduled rate over ``[0, t_s)`` (expected arrivals)."""
    total = 0.0
    for t0, t1, v0, v1 in segs:
        if t_s <= t0:
            break
        u = min(t_s, t1) - t0
        slope = (v1 - v0) / (t1 - t0) if t1 > t0 else 0.0
        total += v0 * u + slope * u * u / 2
    return total


def inverse_stage_arrivals(segs: list[Segment], events: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Λ⁻¹ (vectorised): the time at which Λ reaches each value of ``events`` (each ≤ Λ(end)).

    Within a segment Λ(t0 + u) = C + v0·u + a·u² with a = (v1 − v0)/(2·dt), so u = 2e / (v0 + √(v0² + 4ae))
    for e = event − C: exact for a = 0, for v0 = 0 and for falling rates. Spans of rate 0 are skipped.
    """
    t0, dt, v0, v1, cum = _tables(segs)
    idx = np.clip(np.searchsorted(cum, events, side="right") - 1, 0, len(segs) - 1)
    e = np.maximum(events - cum[idx], 0.0)
    a = np.divide(v1[idx] - v0[idx], 2 * dt[idx], out=np.zeros_like(e), where=dt[idx] > 0)
    root = v0[idx] + np.sqrt(np.maximum(v0[idx] ** 2 + 4 * a * e, 0.0))
    u = np.divide(2 * e, root, out=np.zeros_like(e), where=root > 0)
    out: npt.NDArray[np.float64] = t0[idx] + np.minimum(u, dt[idx])
    return out


def _span_at_least(seg: Segment, need: float) -> tuple[float, float] | None:
    """The part of a linear segment where its value is ≥ ``need`` (an interval, possibly empty)."""
    t0, t1, v0, v1 = seg
    if v0 >= need and v1 >= need:
        return (t0, t1)
    if v0 < need and v1 < need:
        return None
    cross = t0 + (need - v0) / (v1 - v0) * (t1 - t0)
    return (t0, cross) if v0 >= need else (cross, t1)


def user_windows(segs: list[Segment], user: int) -> list[tuple[float, float]]:
    """The spans ``(start_s, end_s)`` in which virtual user ``user`` is active: where the schedule is at
    least ``user + 1`` users (joined at the crossing of a ramp; touching spans merged; spans of zero
    length dropped). A user still active at the schedule's end stays (``end_s = inf``)."""
    need = user + 1
    out: list[tuple[float, float]] = []
    for seg in segs:
        span = _span_at_least(seg, need)
        if span is None or span[1] <= span[0]:
            continue
        if out and span[0] <= out[-1][1]:
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    if out and segs and segs[-1][3] >= need and out[-1][1] >= segs[-1][1]:
        out[-1] = (out[-1][0], math.inf)
    return out
