"""``cache_aware``: a Python approximation of sglang-router's cache-aware policy.

Per request, with ``load`` = the proxy's in-flight count per worker (the real router also uses its own
in-flight count):

1. If loads are imbalanced — ``max − min > balance_abs_threshold`` **and**
   ``max > min × balance_rel_threshold`` — route to the least-loaded worker.
2. Otherwise find the worker whose tree of routed text shares the longest prefix with the request
   text. If ``matched_chars / text_chars > cache_threshold`` route there, else to the least-loaded
   worker.
3. Either way, insert the text into the chosen worker's tree.

Trees are LRU-evicted to ``max_tree_size`` characters: as the real router does, every
``eviction_interval_s`` seconds (checked when a request is routed; trees may grow past the budget in
between), or on every insert that exceeds the budget when ``eviction_interval_s`` is None.

Least-loaded ties go to the first worker in the policy's order, as in the real router.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence

from .base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
from .radix_tree import ApproxRadixTree

__all__ = ["CacheAwarePolicy"]


class CacheAwarePolicy(BaseRoutingPolicy):
    """Prefix-affinity routing with a load-balance override (defaults = sglang-router 0.3.2's CLI).

    Args:
        workers: Worker ids, in tie-break order.
        cache_threshold: Minimum match ratio (matched / request characters, exclusive) for cache
            affinity to win over least-loaded.
        balance_abs_threshold: Absolute in-flight spread above which the system may count as imbalanced.
        balance_rel_threshold: Relative spread (max > min × this) required as well.
        max_tree_size: Character budget of each worker's tree.
        eviction_interval_s: Seconds between evictions (the router's ``eviction_interval_secs``);
            None evicts on every insert that exceeds the budget.
        clock: Seconds of a monotonic clock (tests pass a fake one).

    The keyword arguments have the names of :class:`~sglang_test_framework.config.router_config.RouterConfig`
    fields (``eviction_interval_secs`` → ``eviction_interval_s``), so ``RoutingFactory.create(...,
    router_config=...)`` passes the router's knobs.

    Attributes:
        decisions: How many requests each rule decided: ``imbalanced``, ``cache_match``, ``least_loaded``.

    Raises:
        ValueError: A threshold is out of range.
    """

    def __init__(
        self,
        workers: Sequence[str],
        cache_threshold: float = 0.3,
        balance_abs_threshold: int = 64,
        balance_rel_threshold: float = 1.5,
        max_tree_size: int = 2**26,
        eviction_interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(workers)
        if not 0.0 <= cache_threshold <= 1.0:
            raise ValueError(f"cache_threshold must be in [0, 1], got {cache_threshold}")
        if balance_abs_threshold < 0:
            raise ValueError(f"balance_abs_threshold must be >= 0, got {balance_abs_threshold}")
        if balance_rel_threshold < 1.0:
            raise ValueError(f"balance_rel_threshold must be >= 1, got {balance_rel_threshold}")
        if max_tree_size < 1:
            raise ValueError(f"max_tree_size must be >= 1, got {max_tree_size}")
        if eviction_interval_s is not None and not eviction_interval_s > 0:
            raise ValueError(f"eviction_interval_s must be > 0 or None, got {eviction_interval_s}")
        self.cache_threshold = cache_threshold
        self.balance_abs_threshold = balance_abs_threshold
        self.balance_rel_threshold = balance_rel_threshold
        self.max_tree_size = max_tree_size
        self.eviction_interval_s = eviction_interval_s
        self._clock = clock
        self._next_eviction_s = clock() + eviction_interval_s if eviction_interval_s is not None else 0.0
        self._trees: dict[str, ApproxRadixTree] = {}
        self._tick = 0
        self.decisions = {"imbalanced": 0, "cache_match": 0, "least_loaded": 0}

    def tree(self, worker_id: str) -> ApproxRadixTree:
        """The routed-text tree of ``worker_id`` (created on first use)."""
        tree = self._trees.get(worker_id)
        if tree is None:
            # With periodic eviction the tree itself never evicts (unbounded budget); _evict_if_due does.
            budget = self.max_tree_size if self.eviction_interval_s is None else sys.maxsize
            tree = self._trees[worker_id] = ApproxRadixTree(budget)
        return tree

    def _evict_if_due(self) -> None:
        """Every ``eviction_interval_s``: evict each tree down to ``max_tree_size`` characters."""
        if self.eviction_interval_s is None or self._clock() < self._next_eviction_s:
            return
        for tree in self._trees.values():
            tree.evict(self.max_tree_size)
        self._next_eviction_s = self._clock() + self.eviction_interval_s

    def is_imbalanced(self, max_load: int, min_load: int) -> bool:
        """The real router's imbalance test (both thresholds must be exceeded)."""
        return max_load - min_load > self.balance_abs_threshold and max_load > min_load * self.balance_rel_threshold

    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """Apply the three rules of the module docstring and remember the text for the chosen worker."""
        self._evict_if_due()
        candidates = self.candidates(server_metrics)
        loads = [server_metrics[w].in_flight for w in candidates]
        min_load = min(loads)
        least_loaded = candidates[loads.index(min_load)]
        if self.is_imbalanced(max(loads), min_load):
            choice, rule = least_loaded, "imbalanced"
        else:
            matched = self._best_match(request.text, candidates, loads)
            choice, rule = (least_loaded, "least_loaded") if matched is None else (matched, "cache_match")
        self.decisions[rule] += 1
        self._tick += 1
        self.tree(choice).insert(request.text, self._tick)
        return choice

    def _best_match(self, text: str, candidates: list[str], loads: list[int]) -> str | None:
        """The worker with the longest prefix match (lower load on equal matches) if its match ratio
        exceeds ``cache_threshold``, else None."""
        if not text:
            return None
        best: str | None = None
        best_chars, best_load = 0, 0
        for worker_id, load in zip(candidates, loads, strict=True):
            matched = self.tree(worker_id).match(text)
            if matched > best_chars or (matched == best_chars and best is not None and load < best_load):
                best, best_chars, best_load = worker_id, matched, load
        if best is None or best_chars / len(text) <= self.cache_threshold:
            return None
        return best
