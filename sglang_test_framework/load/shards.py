"""Splitting one workload across client processes (pure: no I/O, no clock).

Every process keeps the *same* schedule (``start + arrival_offset_s`` on CLOCK_MONOTONIC); sharding
only decides which process sends which request:

- open-loop requests (``chain_id is None``) are dealt round-robin in arrival order, so every process
  gets an even share of every part of the schedule (a burst is split, not handed to one process);
- a chain (all requests with one ``chain_id``: a session, a virtual user) is never split: it goes, as
  one unit at its first arrival, to the process that holds the fewest requests so far.

Both rules are one greedy walk: units (a single request or a whole chain) in order of first arrival,
each to the least-loaded process, ties broken round-robin. ``max_concurrency`` is split so the
processes' limits add up to it exactly (:func:`split_concurrency`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config.stages import peak_value
from ..config.workload import WorkloadConfig
from ..records import Request

__all__ = [
    "DEFAULT_RATE_PER_PROCESS",
    "DEFAULT_USERS_PER_PROCESS",
    "auto_client_processes",
    "partition_requests",
    "sizing_load",
    "split_concurrency",
    "unit_count",
]

DEFAULT_RATE_PER_PROCESS = 400.0
"""Offered requests/s one client process is given when the count is automatic. One process keeps
arrival lag p99 under 1 ms up to about 500 req/s of 16-token streams on an idle core
(benchmarks/client_precision.py); 400 leaves headroom for longer streams and a busier machine."""
DEFAULT_USERS_PER_PROCESS = 400
"""Virtual users one client process is given when the count is automatic. A user's pace is set by the
server (each sends when its last answer arrived, plus think time), so the rate is unknown beforehand: a
user is counted as at most one request per second, which holds for LLM requests of ≥ 1 s end to end."""


def _units(requests: Sequence[Request]) -> list[list[Request]]:
    """Open-loop requests one by one and each chain whole, in order of (first) arrival; stable."""
    ordered = sorted(requests, key=lambda r: r.arrival_offset_s)
    units: list[list[Request]] = []
    chains: dict[int, list[Request]] = {}
    for req in ordered:
        if req.chain_id is None:
            units.append([req])
        elif req.chain_id in chains:
            chains[req.chain_id].append(req)
        else:
            chain = [req]
            chains[req.chain_id] = chain
            units.append(chain)
    return units


def partition_requests(requests: Sequence[Request], processes: int) -> list[list[Request]]:
    """``processes`` shards of ``requests``, each in arrival order; every request in exactly one shard.

    Shards may be empty when there are fewer units (requests / chains) than processes.

    Raises:
        ValueError: If ``processes`` < 1.
    """
    if processes < 1:
        raise ValueError(f"processes must be ≥ 1, not {processes}")
    shards: list[list[Request]] = [[] for _ in range(processes)]
    loads = [0] * processes
    turn = 0
    for unit in _units(requests):
        # least loaded; among equals the next one round-robin (so open-loop requests are dealt in turn)
        index = min(range(processes), key=lambda i: (loads[i], (i - turn) % processes))
        shards[index].extend(unit)
        loads[index] += len(unit)
        turn = (index + 1) % processes
    for shard in shards:
        shard.sort(key=lambda r: r.arrival_offset_s)
    return shards


def unit_count(requests: Sequence[Request]) -> int:
    """How many shardable units ``requests`` hold: open-loop requests plus distinct chains."""
    chains = {r.chain_id for r in requests if r.chain_id is not None}
    return len(chains) + sum(1 for r in requests if r.chain_id is None)


def split_concurrency(max_concurrency: int | None, processes: int) -> list[int | None]:
    """Each process's share of a client-wide ``max_concurrency`` (None: no limit anywhere).

    The shares differ by at most one and add up to ``max_concurrency`` (the first ``max_concurrency %
    processes`` processes get one more slot).

    Raises:
        ValueError: If a process would get no slot (``max_concurrency < processes``).
    """
    if max_concurrency is None:
        return [None] * processes
    if max_concurrency < processes:
        raise ValueError(f"max_concurrency={max_concurrency} cannot be shared by {processes} client processes")
    base, extra = divmod(max_concurrency, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


def sizing_load(config: WorkloadConfig) -> float:
    """The offered load, in req/s, that sizes the automatic process count.

    ``request_rate``; when ``stages`` set the rate (``request_rate`` is then ``inf``), the schedule's
    peak rate; with ``virtual_users``, the user count scaled to req/s (:data:`DEFAULT_USERS_PER_PROCESS`
    users per process). ``inf`` (concurrency mode: the server sets the pace) when none applies.
    """
    if config.virtual_users is not None:
        return config.virtual_users * DEFAULT_RATE_PER_PROCESS / DEFAULT_USERS_PER_PROCESS
    if config.stages:
        return peak_value(config.stages)
    return config.request_rate


def auto_client_processes(
    request_rate: float,
    requests: Sequence[Request],
    max_concurrency: int | None,
    cpu_count: int,
    rate_per_process: float = DEFAULT_RATE_PER_PROCESS,
) -> int:
    """The automatic process count: one per ``rate_per_process`` req/s offered (``request_rate``, see
    :func:`sizing_load`; 1 for an unbounded ``inf`` rate, whose pace the server sets), at most
    ``cpu_count``, the number of units and ``max_concurrency``, at least 1."""
    wanted = 1 if math.isinf(request_rate) else math.ceil(request_rate / rate_per_process)
    limits = [wanted, cpu_count, unit_count(requests)]
    if max_concurrency is not None:
        limits.append(max_concurrency)
    return max(1, min(limits))
