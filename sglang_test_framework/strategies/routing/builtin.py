"""Built-in Python policies: round_robin, random, shortest_queue, power_of_two, cache_aware."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

from .base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics

__all__ = ["CacheAwarePolicy", "PowerOfTwoPolicy", "RandomPolicy", "RoundRobinPolicy", "ShortestQueuePolicy"]


class RoundRobinPolicy(BaseRoutingPolicy):
    """Healthy workers in turn."""

    def __init__(self, workers: list[str]) -> None:
        super().__init__(workers)
        self._counter = itertools.count()

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        healthy = [w for w in self.workers if w in server_metrics]
        return healthy[next(self._counter) % len(healthy)]


class RandomPolicy(BaseRoutingPolicy):
    """A uniform pick (seeded)."""

    def __init__(self, workers: list[str], seed: int = 0) -> None:
        super().__init__(workers)
        self._rng = random.Random(seed)

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        return self._rng.choice([w for w in self.workers if w in server_metrics])


class ShortestQueuePolicy(BaseRoutingPolicy):
    """Join the shortest queue: fewest requests in flight at the proxy plus queued at the worker; ties
    are broken round robin so equal workers share load."""

    def __init__(self, workers: list[str]) -> None:
        super().__init__(workers)
        self._tie = itertools.count()

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        healthy = [w for w in self.workers if w in server_metrics]
        best = min(server_metrics[w].in_flight + server_metrics[w].queued for w in healthy)
        ties = [w for w in healthy if server_metrics[w].in_flight + server_metrics[w].queued == best]
        return ties[next(self._tie) % len(ties)]


class PowerOfTwoPolicy(BaseRoutingPolicy):
    """Two random healthy workers; the one with fewer requests in flight."""

    def __init__(self, workers: list[str], seed: int = 0) -> None:
        super().__init__(workers)
        self._rng = random.Random(seed)

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        healthy = [w for w in self.workers if w in server_metrics]
        if len(healthy) == 1:
            return healthy[0]
        a, b = self._rng.sample(healthy, 2)
        return a if server_metrics[a].queue_depth <= server_metrics[b].queue_depth else b


class _CharTree:
    """Approximate prefix tree of routed text for one worker (a set of fixed-size prefix chunks)."""

    CHUNK = 32

    def __init__(self) -> None:
        self.prefixes: dict[str, int] = {}  # prefix → last use
        self.chars = 0

    def match(self, text: str) -> int:
        best, step = 0, self.CHUNK
        for end in range(step, len(text) + 1, step):
            if text[:end] not in self.prefixes:
                break
            best = end
        return best

    def insert(self, text: str, tick: int) -> None:
        for end in range(self.CHUNK, len(text) + 1, self.CHUNK):
            key = text[:end]
            if key not in self.prefixes:
                self.chars += self.CHUNK
            self.prefixes[key] = tick

    def evict_to(self, max_chars: int) -> None:
        if self.chars <= max_chars:
            return
        for key, _ in sorted(self.prefixes.items(), key=lambda kv: kv[1]):
            del self.prefixes[key]
            self.chars -= self.CHUNK
            if self.chars <= max_chars:
                return


class CacheAwarePolicy(BaseRoutingPolicy):
    """A Python approximation of sglang-router's cache_aware policy: if loads are imbalanced
    (max − min > balance_abs_threshold and max > min × balance_rel_threshold) route to the least
    loaded; else to the worker whose routed-text tree matches the longest prefix when the match ratio
    exceeds cache_threshold, otherwise to the least loaded. Load = requests in flight at the proxy."""

    def __init__(
        self,
        workers: list[str],
        cache_threshold: float = 0.3,
        balance_abs_threshold: int = 64,
        balance_rel_threshold: float = 1.5,
        max_tree_size: int = 2**24,
    ) -> None:
        super().__init__(workers)
        self.cache_threshold = cache_threshold
        self.balance_abs_threshold = balance_abs_threshold
        self.balance_rel_threshold = balance_rel_threshold
        self.max_tree_size = max_tree_size
        self.trees = {w: _CharTree() for w in workers}
        self._tick = itertools.count()

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        healthy = [w for w in self.workers if w in server_metrics]
        loads = {w: server_metrics[w].in_flight for w in healthy}
        least = min(healthy, key=lambda w: loads[w])
        hi, lo = max(loads.values()), min(loads.values())
        tick = next(self._tick)
        if hi - lo > self.balance_abs_threshold and hi > lo * self.balance_rel_threshold:
            choice = least
        else:
            text = request.text
            matches = {w: self.trees[w].match(text) for w in healthy}
            best = max(healthy, key=lambda w: matches[w])
            ratio = matches[best] / len(text) if text else 0.0
            choice = best if ratio > self.cache_threshold else least
        tree = self.trees[choice]
        tree.insert(request.text, tick)
        tree.evict_to(self.max_tree_size)
        return choice
