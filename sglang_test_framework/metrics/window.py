"""The measurement window: which part of a run the summary covers, and the rates measured over it.

A run's load phase starts at the load start (offset 0 of the schedule) and ends at ``duration_s`` or, for
a load sized by ``num_prompts``, at the last scheduled arrival; the drain (requests still running after
it) follows. The window is ``[start_s, end_s]`` seconds from the load start:

- ``all``: ``[0, load end]``; every request counts (the summary is the whole run, as without a window);
- ``auto``: ``[ramp_up_s, load end]``, or without a ramp-up ``[10% of the load phase, load end]``;
- ``(start_s, end_s)``: as given.

Membership (docs/metrics.md): a request belongs to the window when its scheduled arrival lies in it
(``scheduled_ns``; ``arrival_ns`` or ``send_ns`` when not recorded) — its latencies, success and SLOs
count whenever it finishes. Throughputs count what happened inside the window: completions whose
``finish_ns`` lies in it, output tokens whose token time lies in it, divided by the window's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config.load_shape import AUTO_SETTLE_FRACTION
from . import definitions as d
from .columns import Bools, Ints, RequestColumns
from .summary import summarize

__all__ = [
    "AUTO_SETTLE_FRACTION",
    "LoadPhases",
    "MeasureWindow",
    "achieved_rate",
    "backlog",
    "in_window",
    "offered_rate",
    "request_time_ns",
    "resolve_window",
    "window_goodput",
    "window_summary",
]


@dataclass(frozen=True)
class LoadPhases:
    """When the load ran: ``start_ns`` (offset 0 of the schedule, ``time.monotonic_ns()``), the ramp-up's
    length and the end of the load phase, in seconds from ``start_ns``."""

    start_ns: int
    ramp_up_s: float = 0.0
    load_end_s: float = 0.0


@dataclass(frozen=True)
class MeasureWindow:
    """``[start_s, end_s]`` seconds from ``origin_ns`` (the load start); ``mode`` ``all``, ``auto`` or
    ``fixed``; ``load_end_s`` and ``ramp_up_s`` of the run, for the report."""

    mode: str
    origin_ns: int
    start_s: float
    end_s: float
    load_end_s: float
    ramp_up_s: float = 0.0

    @property
    def length_s(self) -> float:
        """``end_s − start_s``."""
        return self.end_s - self.start_s

    @property
    def start_ns(self) -> int:
        """The window's start on the records' clock."""
        return self.origin_ns + round(self.start_s * d.NS_PER_S)

    @property
    def end_ns(self) -> int:
        """The window's end on the records' clock."""
        return self.origin_ns + round(self.end_s * d.NS_PER_S)


def request_time_ns(c: RequestColumns) -> Ints:
    """Each request's time for window membership: ``scheduled_ns``, else ``arrival_ns``, else ``send_ns``
    (0 when none was recorded)."""
    return np.where(c.scheduled_ns > 0, c.scheduled_ns, np.where(c.arrival_ns > 0, c.arrival_ns, c.send_ns))


def _phases_from_records(c: RequestColumns) -> LoadPhases:
    times = request_time_ns(c)
    times = times[times > 0]
    if times.size == 0:
        return LoadPhases(0)
    start = int(times.min())
    return LoadPhases(start, 0.0, (int(times.max()) - start) / d.NS_PER_S)


def resolve_window(
    spec: str | tuple[float, float], phases: LoadPhases | None, c: RequestColumns | None = None
) -> MeasureWindow:
    """The window of ``spec`` (``all``, ``auto`` or ``(start_s, end_s)``) for a run with ``phases`` (taken
    from the records' own times when None: load start = the first request, load end = the last)."""
    if phases is None:
        phases = _phases_from_records(c) if c is not None else LoadPhases(0)
    end = phases.load_end_s
    if isinstance(spec, tuple):
        return MeasureWindow("fixed", phases.start_ns, float(spec[0]), float(spec[1]), end, phases.ramp_up_s)
    if spec == "auto":
        start = phases.ramp_up_s if phases.ramp_up_s > 0 else AUTO_SETTLE_FRACTION * end
        return MeasureWindow("auto", phases.start_ns, min(start, end), end, end, phases.ramp_up_s)
    return MeasureWindow("all", phases.start_ns, 0.0, end, end, phases.ramp_up_s)


def in_window(c: RequestColumns, w: MeasureWindow) -> Bools:
    """Requests whose :func:`request_time_ns` lies in ``[start, end]`` (every request for ``all``)."""
    if w.mode == "all":
        return np.ones(len(c), dtype=np.bool_)
    t = request_time_ns(c)
    return (t > 0) & (t >= w.start_ns) & (t <= w.end_ns)


def _finished_inside(c: RequestColumns, w: MeasureWindow) -> Bools:
    return c.success & (c.finish_ns >= w.start_ns) & (c.finish_ns <= w.end_ns) & (c.finish_ns > 0)


def offered_rate(c: RequestColumns, w: MeasureWindow) -> float | None:
    """Offered rate (req/s) = requests scheduled in ``[start, end]`` / window length; None for a window of
    zero length (``request_rate=inf``: everything at t=0)."""
    if w.length_s <= 0:
        return None
    t = request_time_ns(c)
    return int(((t > 0) & (t >= w.start_ns) & (t <= w.end_ns)).sum()) / w.length_s


def achieved_rate(c: RequestColumns, w: MeasureWindow) -> float | None:
    """Achieved rate (req/s) = successful requests whose ``finish_ns`` lies in ``[start, end]`` / window
    length (whenever they were sent); None for a window of zero length."""
    if w.length_s <= 0:
        return None
    return int(_finished_inside(c, w).sum()) / w.length_s


def _window_throughputs(c: RequestColumns, w: MeasureWindow) -> dict[str, float]:
    """Throughputs over the window's span: completions, their prompt tokens, and output tokens of
    completed requests whose token time lies in the window; concurrency = Σ over completed requests of
    the part of [send, finish] inside the window / window length."""
    length = w.length_s
    done = _finished_inside(c, w)
    input_tokens = int(c.prompt_len.sum(where=done & (c.prompt_len >= 0), dtype=np.int64))
    token_times = d.token_times_ns(c)
    timed = np.repeat(c.success, c.first_chunk_tokens.astype(np.int64) + c.gap_count)
    output_tokens = int((timed & (token_times >= w.start_ns) & (token_times <= w.end_ns)).sum())
    ok = c.success & (c.send_ns > 0) & (c.finish_ns >= c.send_ns)
    overlap = np.minimum(c.finish_ns[ok], w.end_ns) - np.maximum(c.send_ns[ok], w.start_ns)
    busy_s = float(np.clip(overlap, 0, None).sum()) / d.NS_PER_S
    return {
        "duration_s": length,
        "request_throughput": int(done.sum()) / length,
        "input_throughput": input_tokens / length,
        "output_throughput": output_tokens / length,
        "total_throughput": (input_tokens + output_tokens) / length,
        "concurrency": busy_s / length,
    }


def backlog(c: RequestColumns, times_ns: Ints) -> Ints:
    """Requests scheduled by each time and not yet finished (sent or waiting to be sent, failed ones until
    their finish): #(request time ≤ t) − #(finish ≤ t)."""
    t = request_time_ns(c)
    arrived = np.sort(t[t > 0])
    finished = np.sort(c.finish_ns[(c.finish_ns > 0) & (t > 0)])
    return np.searchsorted(arrived, times_ns, side="right") - np.searchsorted(finished, times_ns, side="right")


def _window_block(c: RequestColumns, w: MeasureWindow, inside: Bools) -> dict[str, Any]:
    return {
        "mode": w.mode,
        "start_s": w.start_s,
        "end_s": w.end_s,
        "length_s": w.length_s,
        "load_end_s": w.load_end_s,
        "ramp_up_s": w.ramp_up_s,
        "requests": int(inside.sum()),
        "completed": int((inside & c.success).sum()),
        "excluded_requests": int((~inside).sum()),
    }


def window_summary(c: RequestColumns, w: MeasureWindow) -> dict[str, Any]:
    """What the window changes in the run summary (:func:`.summary.summarize` of every request): always
    ``measure_window`` (what it covered), ``offered_rate`` and ``achieved_rate``.

    For ``all`` nothing else: the summary stays that of every request. Otherwise also every key of
    :func:`.summary.summarize` over the requests in the window (counts, latencies, success), with the
    throughputs, ``duration_s`` and ``concurrency`` taken over the window's span, and ``run_totals``:
    the whole run's ``total_requests``, ``completed``, ``failed`` and ``errors_by_type`` (failures
    outside the window still count against the run).
    """
    inside = in_window(c, w)
    out: dict[str, Any] = {}
    if w.mode != "all":
        out = summarize(c.select(inside))
        if w.length_s > 0:
            out.update(_window_throughputs(c, w))
        out["run_totals"] = {
            "total_requests": len(c),
            "completed": d.completed(c),
            "failed": d.failed(c),
            "errors_by_type": d.error_counts(c),
        }
    out["measure_window"] = _window_block(c, w, inside)
    out["offered_rate"] = offered_rate(c, w)
    out["achieved_rate"] = achieved_rate(c, w)
    return out


def window_goodput(c: RequestColumns, w: MeasureWindow, slos_ms: Mapping[str, float]) -> dict[str, Any]:
    """bench_serving's goodput block (:func:`.definitions.slo_attainment`) of the window's requests;
    ``request_goodput`` divides by the window's length (by ``duration_s`` of the run for ``all``)."""
    if w.mode == "all":
        return d.slo_attainment(c, slos_ms, d.duration_s(c))
    return d.slo_attainment(c.select(in_window(c, w)), slos_ms, max(w.length_s, 0.0))
