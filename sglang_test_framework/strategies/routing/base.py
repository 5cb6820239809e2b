"""BaseRoutingPolicy and the data a policy sees (the spec's import path)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["BaseRoutingPolicy", "RoutingRequest", "WorkerMetrics"]


@dataclass
class RoutingRequest:
    """The routing-relevant view of one incoming request.

    ``text`` is what prefix-aware policies match on: the ``/generate`` text (or input_ids joined by
    spaces), the completions prompt, or the chat messages' contents joined by single spaces.
    """

    path: str
    text: str
    request_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class WorkerMetrics:
    """Live metrics of one worker; supports ``m.throughput`` and ``m['throughput']``.

    Attributes:
        throughput: recent output tokens/s (from the worker's ``sglang:generation_tokens_total`` rate).
        latency: recent mean request latency in seconds at the proxy (floor 1e-3 so scores never divide by 0).
        queue_depth: requests in flight at the proxy for this worker + the worker's own queued requests.
        in_flight: requests the proxy has sent to this worker and not yet finished.
        running / queued: the worker's ``sglang:num_running_reqs`` / ``sglang:num_queue_reqs``.
        memory_usage: the worker's KV token usage (0..1, ``sglang:token_usage``).
        cache_hit_rate: the worker's ``sglang:cache_hit_rate``.
        healthy: False after a connection failure, until the next successful metrics refresh.
    """

    throughput: float = 0.0
    latency: float = 1e-3
    queue_depth: float = 0.0
    in_flight: int = 0
    running: float = 0.0
    queued: float = 0.0
    memory_usage: float = 0.0
    cache_hit_rate: float = 0.0
    healthy: bool = True
    requests_total: int = 0
    errors_total: int = 0

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(f"{key!r}: WorkerMetrics has {[f.name for f in fields(self)]}")
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style get."""
        return getattr(self, key, default)

    def keys(self) -> list[str]:
        """Dict-style keys."""
        return [f.name for f in fields(self)]


class BaseRoutingPolicy(ABC):
    """Subclass and implement :meth:`route_request`; register with ``RoutingFactory.register``."""

    def __init__(self, workers: list[str]) -> None:
        if not workers:
            raise ValueError("a routing policy needs at least one worker")
        self.workers = list(workers)

    @abstractmethod
    def route_request(self, request: RoutingRequest, server_metrics: Mapping[str, WorkerMetrics]) -> str:
        """Return the id of the worker that should serve ``request`` (one of ``server_metrics``' keys,
        which holds only healthy workers)."""

    def on_request_started(self, worker_id: str, request: RoutingRequest) -> None:  # noqa: B027 - optional hook
        """Called after the request was sent to ``worker_id``."""

    def on_request_finished(  # noqa: B027 - optional hook
        self, worker_id: str, request: RoutingRequest, success: bool, latency_s: float
    ) -> None:
        """Called when the response was fully forwarded."""
