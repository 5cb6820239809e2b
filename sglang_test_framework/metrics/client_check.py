"""The client self-check: did the load generator, not the server, limit the run?

Every result carries it (docs/metrics.md, "Client self-check"): how late the dispatcher fired each
arrival, the offered vs achieved send rate, each client process's CPU utilisation and the coalesced-chunk
share, and a verdict ``client_bound`` with the rule that fired (``client_bound_reason``).

Definitions (over every request of the load, not only the measurement window: the client's health is a
property of the whole run):

- arrival lag (ms) = ``arrival_ns − scheduled_ns`` (:func:`.definitions.schedule_lag_ms`), p50/p99/max;
- offered send rate (req/s) = (N − 1) / (last − first ``scheduled_ns``) over the N scheduled requests;
- achieved send rate (req/s) = (M − 1) / (last − first ``send_ns``) over the M sent requests;
- mean inter-arrival (ms) = 1000 / offered send rate (None for a burst: every request scheduled at once);
- CPU utilisation of a client process = ``cpu_s / wall_s`` (1.0 = one core busy the whole load).

Verdict rules, in order; the first that holds sets ``client_bound`` and names itself in the reason:

1. **lag**: arrival lag p99 > max(:data:`LAG_FLOOR_MS`, :data:`LAG_INTERARRIVAL_FRACTION` × mean
   inter-arrival) — the timers fired so late that the open-loop schedule is no longer the one asked for
   (not judged for a burst, whose arrivals are all due at once);
2. **send rate**: open loop (no ``max_concurrency``, which makes sends wait for the server), the server
   not over-saturated, and achieved send rate < (1 − :data:`SEND_RATE_SHORTFALL`) × offered send rate;
3. **CPU**: a client process at ≥ :data:`CPU_BUSY_FRACTION` of a core while the arrival lag p99 exceeds
   :data:`LAG_FLOOR_MS` (a busy process whose timers still fire on time is not limiting the run: the
   dispatcher's last-millisecond busy-yield before each arrival counts as CPU time).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..records import ClientProcessStats
from . import definitions as d
from .columns import RequestColumns
from .order_stats import percentile

__all__ = [
    "CPU_BUSY_FRACTION",
    "LAG_FLOOR_MS",
    "LAG_INTERARRIVAL_FRACTION",
    "SEND_RATE_SHORTFALL",
    "ClientCheck",
    "achieved_send_rate",
    "arrival_lag_stats",
    "check_client",
    "cpu_utilisation",
    "lag_bound_ms",
    "measure_client_process",
    "offered_send_rate",
]

LAG_FLOOR_MS = 1.0
"""Arrival lag p99 above this is always worth a look; below it no rate is judged client-bound."""
LAG_INTERARRIVAL_FRACTION = 0.25
"""Arrival lag p99 above this share of the mean inter-arrival time distorts the schedule."""
SEND_RATE_SHORTFALL = 0.01
"""An achieved send rate more than this share below the offered one is a client that fell behind."""
CPU_BUSY_FRACTION = 0.9
"""A client process at this share of one core (or more) has no headroom left."""


def _rate(times_ns: np.ndarray[Any, np.dtype[np.int64]]) -> float | None:
    """(N − 1) / (last − first) in events per second over the recorded (nonzero) times; None for fewer
    than two or a span of zero."""
    t = times_ns[times_ns > 0]
    if t.size < 2:
        return None
    span_ns = int(t.max()) - int(t.min())
    return (t.size - 1) * d.NS_PER_S / span_ns if span_ns > 0 else None


def offered_send_rate(c: RequestColumns) -> float | None:
    """Offered send rate (req/s) = (N − 1) / (last − first ``scheduled_ns``); None for a burst."""
    return _rate(c.scheduled_ns)


def achieved_send_rate(c: RequestColumns) -> float | None:
    """Achieved send rate (req/s) = (M − 1) / (last − first ``send_ns``) over the sent requests."""
    return _rate(c.send_ns)


def arrival_lag_stats(c: RequestColumns) -> dict[str, float | None]:
    """p50, p99 and max of the arrival lag (ms) = ``arrival_ns − scheduled_ns`` over every request that
    has both (successful or not: the dispatcher fired it either way); None without one."""
    lag = d.schedule_lag_ms(c)
    lag = np.sort(lag[~np.isnan(lag)])
    n = int(lag.size)
    if n == 0:
        return {"p50": None, "p99": None, "max": None}

    def value_at(i: int) -> float:
        return float(lag[i])

    return {"p50": percentile(value_at, n, 50), "p99": percentile(value_at, n, 99), "max": value_at(n - 1)}


def lag_bound_ms(offered_rate: float | None) -> float | None:
    """The arrival-lag p99 bound of rule 1 = max(LAG_FLOOR_MS, LAG_INTERARRIVAL_FRACTION × 1000 /
    offered rate); None for a burst (no offered rate)."""
    if offered_rate is None or offered_rate <= 0:
        return None
    return max(LAG_FLOOR_MS, LAG_INTERARRIVAL_FRACTION * 1000.0 / offered_rate)


def cpu_utilisation(process: ClientProcessStats) -> float | None:
    """CPU utilisation of one process = ``cpu_s / wall_s`` (share of one core); None without wall time."""
    return process.cpu_s / process.wall_s if process.wall_s > 0 else None


@dataclass(frozen=True)
class ClientCheck:
    """The self-check of one run (see the module docstring for every formula and rule)."""

    arrival_lag_ms: dict[str, float | None]
    lag_bound_ms: float | None
    offered_send_rate: float | None
    achieved_send_rate: float | None
    coalesced_chunk_share: float | None
    processes: list[dict[str, Any]] = field(default_factory=list)
    max_cpu_utilisation: float | None = None
    client_bound: bool = False
    client_bound_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Summary keys: ``client_check`` (every number) and the flat ``client_bound`` /
        ``client_bound_reason``."""
        block = {
            "arrival_lag_p50_ms": self.arrival_lag_ms["p50"],
            "arrival_lag_p99_ms": self.arrival_lag_ms["p99"],
            "arrival_lag_max_ms": self.arrival_lag_ms["max"],
            "lag_bound_ms": self.lag_bound_ms,
            "offered_send_rate": self.offered_send_rate,
            "achieved_send_rate": self.achieved_send_rate,
            "coalesced_chunk_share": self.coalesced_chunk_share,
            "max_cpu_utilisation": self.max_cpu_utilisation,
            "processes": self.processes,
            "client_bound": self.client_bound,
            "client_bound_reason": self.client_bound_reason,
        }
        return {
            "client_check": block,
            "client_bound": self.client_bound,
            "client_bound_reason": self.client_bound_reason,
        }


def _verdict(
    lag: dict[str, float | None],
    bound_ms: float | None,
    offered: float | None,
    achieved: float | None,
    busiest: tuple[int, float] | None,
    rate_judged: bool,
) -> str:
    """The reason of the first rule that holds, or "" (module docstring, "Verdict rules")."""
    p99 = lag["p99"]
    if p99 is not None and bound_ms is not None and p99 > bound_ms:
        return (
            f"arrival lag p99 {p99:.2f} ms > {bound_ms:.2f} ms (max of {LAG_FLOOR_MS:g} ms and "
            f"{LAG_INTERARRIVAL_FRACTION:g} × the mean inter-arrival): the dispatcher fired late"
        )
    if rate_judged and offered is not None and achieved is not None and achieved < (1 - SEND_RATE_SHORTFALL) * offered:
        return (
            f"achieved send rate {achieved:.2f} req/s is {100 * (1 - achieved / offered):.1f} % below the "
            f"offered {offered:.2f} req/s while the server was not over-saturated"
        )
    if busiest is not None and busiest[1] >= CPU_BUSY_FRACTION and p99 is not None and p99 > LAG_FLOOR_MS:
        return (
            f"client process {busiest[0]} used {100 * busiest[1]:.0f} % of a core and the arrival lag p99 is "
            f"{p99:.2f} ms (> {LAG_FLOOR_MS:g} ms)"
        )
    return ""


def check_client(
    c: RequestColumns,
    processes: Sequence[ClientProcessStats] = (),
    *,
    open_loop: bool = True,
    saturated: bool | None = None,
) -> ClientCheck:
    """The self-check of a run's columns and its client processes.

    Args:
        c: Every request of the load.
        processes: CPU and wall time of each client process (``MetricsCollector.client_processes``).
        open_loop: False when sends wait on the server (``max_concurrency``, closed-loop chains): the
            send-rate rule is then not applied.
        saturated: The over-saturation verdict (metrics/saturation.py); True skips the send-rate rule.
    """
    lag = arrival_lag_stats(c)
    offered = offered_send_rate(c)
    achieved = achieved_send_rate(c)
    bound = lag_bound_ms(offered)
    rows = []
    busiest: tuple[int, float] | None = None
    for p in processes:
        util = cpu_utilisation(p)
        rows.append({**p.to_dict(), "cpu_utilisation": util})
        if util is not None and (busiest is None or util > busiest[1]):
            busiest = (p.index, util)
    reason = _verdict(lag, bound, offered, achieved, busiest, open_loop and saturated is not True)
    return ClientCheck(
        arrival_lag_ms=lag,
        lag_bound_ms=bound,
        offered_send_rate=offered,
        achieved_send_rate=achieved,
        coalesced_chunk_share=d.coalesced_chunk_share(c),
        processes=rows,
        max_cpu_utilisation=busiest[1] if busiest is not None else None,
        client_bound=bool(reason),
        client_bound_reason=reason,
    )


@contextlib.contextmanager
def measure_client_process(
    out: list[ClientProcessStats], requests: Callable[[], int], index: int = 0
) -> Iterator[None]:
    """Measure this process's CPU (``time.process_time``: user + system, all threads) and wall time over
    the block and append them to ``out`` as a :class:`ClientProcessStats` — also when the block raises
    or is cancelled. ``requests`` is read at the end (e.g. ``lambda: stats.arrived``)."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        yield
    finally:
        out.append(
            ClientProcessStats(
                index=index,
                pid=os.getpid(),
                host=socket.gethostname(),
                cpu_s=time.process_time() - cpu0,
                wall_s=time.monotonic() - wall0,
                requests=requests(),
            )
        )
