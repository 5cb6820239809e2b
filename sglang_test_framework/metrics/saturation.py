"""Over-saturation, detected rather than assumed: does the backlog grow without bound over the window?

Arrivals minus completions is the change of the backlog, so "achieved throughput stops tracking the
offered rate" and "the queue grows" are one observation; the backlog's slope measures it without the
bias a short window gives the ratio achieved / offered (an idle server filling up looks like a
shortfall of one latency's worth of completions). The rule (docs/metrics.md):

1. Judged only when the window is at least :data:`MIN_WINDOW_S` long and holds at least
   :data:`MIN_WINDOW_REQUESTS` scheduled requests; otherwise ``saturated`` is None ("not judged").
2. A least-squares line is fitted from the window's start plus a settling time — the median latency
   (finish − scheduled arrival) of the window's completed requests, at most a third of the window, so
   that an idle server filling up does not count as growth — to its end, to
   - the client backlog: requests scheduled and not yet finished (waiting for a concurrency slot or
     in flight), exact from the records at :data:`FIT_POINTS` evenly spaced times, and
   - the server queue: ``sglang:num_queue_reqs`` as sampled, summed over servers (slopes added).
3. Saturated when either slope exceeds :data:`SLOPE_FRACTION` of the offered rate *and* the fitted
   growth over the fitted span is at least :data:`MIN_GROWTH_REQUESTS` requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import definitions as d
from .columns import Floats, Ints, RequestColumns
from .window import MeasureWindow, achieved_rate, backlog, in_window, offered_rate, request_time_ns

__all__ = [
    "FIT_POINTS",
    "FIT_START_FRACTION",
    "MIN_GROWTH_REQUESTS",
    "MIN_WINDOW_REQUESTS",
    "MIN_WINDOW_S",
    "SLOPE_FRACTION",
    "SaturationVerdict",
    "judge_saturation",
    "slope_per_s",
]

SLOPE_FRACTION = 0.10
"""A backlog growing faster than this share of the offered rate is growing without bound."""
MIN_GROWTH_REQUESTS = 2.0
"""…and it must have grown by at least this many requests over the fitted span (noise floor)."""
MIN_WINDOW_S = 1.0
"""Shortest window that is judged."""
MIN_WINDOW_REQUESTS = 10
"""Fewest scheduled requests in the window for a judgement."""
FIT_START_FRACTION = 1 / 3
"""The settling time skipped before the fit is at most this share of the window."""
FIT_POINTS = 200
"""Times at which the client backlog is evaluated for the fit."""
MIN_QUEUE_SAMPLES = 3
"""Fewest server samples in the fitted span for a server-queue slope."""


@dataclass(frozen=True)
class SaturationVerdict:
    """``saturated`` (None: not judged), the reason in one sentence, and the slopes (req/s) it rests on."""

    saturated: bool | None
    reason: str
    backlog_slope: float | None = None
    server_queue_slope: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary keys ``saturated``, ``saturation_reason``, ``backlog_slope``, ``server_queue_slope``."""
        out = asdict(self)
        out["saturation_reason"] = out.pop("reason")
        return out


def slope_per_s(t_ns: Ints | Floats, values: Ints | Floats) -> float | None:
    """Least-squares slope of ``values`` against ``t_ns`` (ns), per second; None for fewer than two
    distinct times."""
    t = (np.asarray(t_ns, dtype=np.float64) - float(np.min(t_ns))) / d.NS_PER_S if len(t_ns) else np.zeros(0)
    if t.size < 2 or float(np.ptp(t)) == 0.0:
        return None
    y = np.asarray(values, dtype=np.float64)
    tc = t - t.mean()
    return float((tc * (y - y.mean())).sum() / (tc * tc).sum())


def _server_queue_slope(queues: Mapping[str, tuple[Ints, Floats]], fit_start_ns: int, fit_end_ns: int) -> float | None:
    slopes = []
    for t_ns, values in queues.values():
        span = (t_ns >= fit_start_ns) & (t_ns <= fit_end_ns)
        if int(span.sum()) >= MIN_QUEUE_SAMPLES:
            slope = slope_per_s(t_ns[span], values[span])
            if slope is not None:
                slopes.append(slope)
    return float(sum(slopes)) if slopes else None


def _settle_ns(c: RequestColumns, w: MeasureWindow) -> int:
    """The median latency (finish − scheduled arrival) of the window's completed requests, at most
    :data:`FIT_START_FRACTION` of the window: how long an idle server takes to fill up."""
    cap = round(FIT_START_FRACTION * (w.end_ns - w.start_ns))
    done = in_window(c, w) & c.success & (c.finish_ns > 0)
    latency = (c.finish_ns - request_time_ns(c))[done]
    return min(cap, int(np.median(latency))) if latency.size else cap


def judge_saturation(
    c: RequestColumns, w: MeasureWindow, server_queues: Mapping[str, tuple[Ints, Floats]] | None = None
) -> SaturationVerdict:
    """Apply the module's rule to the run's columns over window ``w``.

    Args:
        c: Every request of the run (the backlog counts requests from before the window too).
        w: The measurement window.
        server_queues: Per server, its ``sglang:num_queue_reqs`` samples as (times in ns on the records'
            clock, values); empty or None without server time series.
    """
    offered = offered_rate(c, w)
    if offered is None:
        return SaturationVerdict(
            None, "not judged: every request was scheduled at once (request_rate=inf), so no rate was offered"
        )
    inside = round(offered * w.length_s)  # requests scheduled in [start, end]
    if w.length_s < MIN_WINDOW_S or inside < MIN_WINDOW_REQUESTS:
        return SaturationVerdict(
            None,
            f"not judged: {inside} requests over {max(w.length_s, 0.0):.2f} s in the window; judging needs "
            f"≥ {MIN_WINDOW_REQUESTS} requests and ≥ {MIN_WINDOW_S:g} s",
        )
    achieved = achieved_rate(c, w) or 0.0
    fit_start = w.start_ns + _settle_ns(c, w)
    fit_len_s = (w.end_ns - fit_start) / d.NS_PER_S
    times = np.linspace(fit_start, w.end_ns, FIT_POINTS).astype(np.int64)
    client = slope_per_s(times, backlog(c, times)) or 0.0
    server = _server_queue_slope(server_queues or {}, fit_start, w.end_ns)
    threshold = SLOPE_FRACTION * offered
    rates = f"achieved {achieved:.2f} of {offered:.2f} req/s offered"

    def grows(slope: float | None) -> bool:
        return slope is not None and slope > threshold and slope * fit_len_s >= MIN_GROWTH_REQUESTS

    limit = f"more than {SLOPE_FRACTION:.0%} of the offered rate ({threshold:.2f} req/s)"
    if grows(client):
        reason = f"the client backlog (scheduled, not finished) grew {client:+.2f} req/s, {limit}; {rates}"
        return SaturationVerdict(True, reason, client, server)
    if grows(server):
        reason = f"the server queue (sglang:num_queue_reqs) grew {server:+.2f} req/s, {limit}; {rates}"
        return SaturationVerdict(True, reason, client, server)
    shown = f"client backlog {client:+.2f} req/s"
    shown += f", server queue {server:+.2f} req/s" if server is not None else ""
    return SaturationVerdict(False, f"keeps up: {shown} (limit {threshold:.2f} req/s); {rates}", client, server)
