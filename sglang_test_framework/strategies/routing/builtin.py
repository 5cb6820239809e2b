"""Built-in load-based policies: ``round_robin``, ``random``, ``shortest_queue``, ``power_of_two``.

``cache_aware`` lives in :mod:`.cache_aware`. Every policy routes only among the workers it is given in
``server_metrics`` (the proxy passes the healthy, not-yet-tried ones) and is deterministic for a fixed
seed and input sequence.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from .base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics

__all__ = ["PowerOfTwoPolicy", "RandomPolicy", "RoundRobinPolicy", "ShortestQueuePolicy", "worker_load"]


def worker_load(metrics: WorkerMetrics, include_worker_queue: bool = True) -> int:
    """Load of a worker as the load-based policies see it: requests in flight at the proxy, plus the
    worker's own queued requests (``sglang:num_queue_reqs``) when ``include_worker_queue``."""
    return metrics.in_flight + metrics.queued if include_worker_queue else metrics.in_flight


class RoundRobinPolicy(BaseRoutingPolicy):
    """Workers in turn: a counter modulo the available workers (like sglang-router's round_robin).

    Args:
        workers: Worker ids in routing order.
    """

    def __init__(self, workers: Sequence[str]) -> None:
        super().__init__(workers)
        self._counter = 0

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """The next worker in turn among ``server_metrics``."""
        candidates = self.candidates(server_metrics)
        choice = candidates[self._counter % len(candidates)]
        self._counter += 1
        return choice


class RandomPolicy(BaseRoutingPolicy):
    """A uniform pick among the available workers, from a seeded generator (reproducible runs).

    Args:
        workers: Worker ids.
        seed: Seed of the policy's own ``random.Random``; None seeds from the OS.
    """

    def __init__(self, workers: Sequence[str], seed: int | None = 0) -> None:
        super().__init__(workers)
        self._rng = random.Random(seed)

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """A uniformly random worker of ``server_metrics``."""
        return self._rng.choice(self.candidates(server_metrics))


class ShortestQueuePolicy(BaseRoutingPolicy):
    """Join the shortest queue: the worker with the least :func:`worker_load`.

    The proxy's in-flight count is exact at decision time; the worker's queued count is as fresh as
    the last metrics refresh. Ties rotate: the search starts after the previous pick, so equally
    loaded workers take turns instead of the first one taking everything.

    Args:
        workers: Worker ids.
        include_worker_queue: Add the worker's ``sglang:num_queue_reqs`` to the proxy's in-flight count
            (counts requests from other clients; those sent by the proxy weigh double while queued).
    """

    def __init__(self, workers: Sequence[str], include_worker_queue: bool = True) -> None:
        super().__init__(workers)
        self.include_worker_queue = include_worker_queue
        self._start = 0

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """The least-loaded worker; the first one after the previous pick among equals."""
        candidates = self.candidates(server_metrics)
        count = len(candidates)
        best_index, best_load = -1, 0
        for step in range(count):
            index = (self._start + step) % count
            load = worker_load(server_metrics[candidates[index]], self.include_worker_queue)
            if best_index < 0 or load < best_load:
                best_index, best_load = index, load
        self._start = best_index + 1
        return candidates[best_index]


class PowerOfTwoPolicy(BaseRoutingPolicy):
    """Power of two choices: two distinct random workers, the one with the lower :func:`worker_load`
    (the first drawn on a tie). With one worker available, that worker.

    sglang-router's power_of_two compares token loads polled from ``/get_load`` every 30 s; this one
    compares live request counts (see docs/routing-policies.md).

    Args:
        workers: Worker ids.
        seed: Seed of the policy's own ``random.Random``; None seeds from the OS.
        include_worker_queue: As for :class:`ShortestQueuePolicy`.
    """

    def __init__(self, workers: Sequence[str], seed: int | None = 0, include_worker_queue: bool = True) -> None:
        super().__init__(workers)
        self.include_worker_queue = include_worker_queue
        self._rng = random.Random(seed)

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """The less loaded of two random workers."""
        candidates = self.candidates(server_metrics)
        if len(candidates) == 1:
            return candidates[0]
        first, second = self._rng.sample(candidates, 2)
        first_load = worker_load(server_metrics[first], self.include_worker_queue)
        second_load = worker_load(server_metrics[second], self.include_worker_queue)
        return first if first_load <= second_load else second
