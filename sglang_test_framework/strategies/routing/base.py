"""What a routing policy is and what it sees: :class:`BaseRoutingPolicy`, :class:`RoutingRequest` and
:class:`WorkerMetrics` (the spec's import path ``sglang_test_framework.strategies.routing.base``).

A policy is plain synchronous Python: the proxy calls :meth:`BaseRoutingPolicy.route_request` once per
request on its event loop, so a policy must not block (no I/O, no sleeps) and should answer in
microseconds. Everything a policy needs arrives in its two arguments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

__all__ = ["LATENCY_FLOOR_S", "BaseRoutingPolicy", "RoutingRequest", "WorkerMetrics"]

LATENCY_FLOOR_S = 1e-3
"""Smallest ``WorkerMetrics.latency`` (s): a policy dividing by latency never divides by zero."""


@dataclass(slots=True)
class RoutingRequest:
    """The routing-relevant view of one incoming request (built once per request by the proxy).

    Attributes:
        path: Request path, e.g. ``/generate``, ``/v1/completions``, ``/v1/chat/completions``.
        text: What prefix-aware policies match on, chosen like sglang-router: the ``/generate``
            ``text`` (or ``input_ids`` joined by spaces), the completions ``prompt``, or the chat
            messages' contents joined by single spaces.
        request_id: The ``X-Request-Id`` header, else the body's ``rid``; None when neither is given.
        body: The parsed JSON body (read-only: the proxy forwards the original bytes, not this dict).
        headers: The incoming request headers (case-insensitive mapping when built by the proxy).
    """

    path: str
    text: str
    request_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class WorkerMetrics(Mapping[str, float]):
    """Live metrics of one worker, readable as ``m.throughput`` or ``m["throughput"]``.

    The proxy owns these objects and updates them in place; policies must treat them as read-only.
    Sources: "proxy" values are the proxy's own bookkeeping and are exact at decision time; "worker"
    values come from the worker's Prometheus ``/metrics``, refreshed every ``metrics_interval_s``.

    Attributes:
        throughput: Recent output tokens/s of the worker (worker: rate of
            ``sglang:generation_tokens_total`` over the last few refreshes; ``sglang:gen_throughput``
            when the counter is missing; 0 before two refreshes).
        latency: Mean end-to-end latency (s) of the worker's recent successful requests through the
            proxy (proxy; never below ``LATENCY_FLOOR_S``).
        queue_depth: ``in_flight + queued``. A request waiting at the worker is counted in both terms,
            so queueing at the worker weighs double; requests sent by other clients count once.
        in_flight: Requests the proxy has sent to the worker and not finished relaying (proxy).
        running: The worker's ``sglang:num_running_reqs`` (worker).
        queued: The worker's ``sglang:num_queue_reqs`` (worker).
        memory_usage: The worker's KV-cache token usage, 0..1 (worker: ``sglang:token_usage``).
        cache_hit_rate: Prefix-cache hit rate of the worker's latest prefill batch, 0..1
            (worker: ``sglang:cache_hit_rate``).
        healthy: False after a failed connection (request or metrics scrape) until the next scrape
            succeeds (proxy).
        requests_total: Requests the proxy has finished with this worker, failed ones included (proxy).
        errors_total: Of those, non-2xx answers, broken streams and failed connections (proxy).
    """

    throughput: float = 0.0
    latency: float = LATENCY_FLOOR_S
    queue_depth: int = 0
    in_flight: int = 0
    running: int = 0
    queued: int = 0
    memory_usage: float = 0.0
    cache_hit_rate: float = 0.0
    healthy: bool = True
    requests_total: int = 0
    errors_total: int = 0

    def __getitem__(self, key: str) -> float:
        if key not in _METRIC_KEY_SET:
            raise KeyError(f"{key!r} is not a WorkerMetrics field; fields: {', '.join(_METRIC_KEYS)}")
        return cast(float, getattr(self, key))

    def __iter__(self) -> Iterator[str]:
        return iter(_METRIC_KEYS)

    def __len__(self) -> int:
        return len(_METRIC_KEYS)

    def as_dict(self) -> dict[str, Any]:
        """A plain-dict snapshot (JSON-serialisable)."""
        return asdict(self)


_METRIC_KEYS = tuple(f.name for f in fields(WorkerMetrics))
_METRIC_KEY_SET = frozenset(_METRIC_KEYS)


class BaseRoutingPolicy(ABC):
    """Base class of every routing policy; subclass it, implement :meth:`route_request`, then
    ``RoutingFactory.register("my_policy", MyPolicy)``.

    Args:
        workers: Ids of all workers the policy may route to, in a stable order (e.g. ``"worker_0"``…).

    Raises:
        ValueError: ``workers`` is empty or has duplicates.
    """

    def __init__(self, workers: Sequence[str]) -> None:
        ids = list(workers)
        if not ids:
            raise ValueError("a routing policy needs at least one worker id")
        if len(set(ids)) != len(ids):
            raise ValueError(f"worker ids must be unique, got {ids}")
        self.workers: list[str] = ids

    @abstractmethod
    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """Choose the worker for ``request``.

        Args:
            request: The parsed routing view of the request.
            server_metrics: Worker id → live metrics for the workers that may be chosen now (the
                healthy ones not yet tried for this request; all untried ones when none is healthy).

        Returns:
            One of ``server_metrics``' keys.
        """

    def on_request_started(self, worker_id: str, request: RoutingRequest) -> None:  # noqa: B027 - optional hook
        """Hook: the proxy is sending ``request`` to ``worker_id`` (called once per attempt)."""

    def on_request_finished(  # noqa: B027 - optional hook
        self, worker_id: str, request: RoutingRequest, success: bool, latency_s: float
    ) -> None:
        """Hook: an attempt ended. ``success`` means a 2xx answer relayed completely; ``latency_s``
        runs from sending upstream to the last byte relayed (or to the failure)."""

    def candidates(self, server_metrics: Mapping[str, WorkerMetrics]) -> list[str]:
        """The workers of ``server_metrics`` in this policy's worker order (unknown ids last).

        Raises:
            ValueError: ``server_metrics`` is empty.
        """
        ordered = [w for w in self.workers if w in server_metrics]
        if len(ordered) != len(server_metrics):
            known = set(ordered)
            ordered.extend(w for w in server_metrics if w not in known)
        if not ordered:
            raise ValueError(f"{type(self).__name__}: no worker to route to (server_metrics is empty)")
        return ordered
