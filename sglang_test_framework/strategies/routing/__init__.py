"""Routing policies: :class:`BaseRoutingPolicy`, the built-in policies, :class:`RoutingFactory` (the
registry), and the Python routing proxy that runs them in front of the workers."""

from __future__ import annotations

from .base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
from .builtin import PowerOfTwoPolicy, RandomPolicy, RoundRobinPolicy, ShortestQueuePolicy
from .cache_aware import CacheAwarePolicy
from .factory import InvalidPolicyError, RoutingFactory, UnknownPolicyError
from .proxy import RoutingProxy

__all__ = [
    "BaseRoutingPolicy",
    "CacheAwarePolicy",
    "InvalidPolicyError",
    "PowerOfTwoPolicy",
    "RandomPolicy",
    "RoundRobinPolicy",
    "RoutingFactory",
    "RoutingProxy",
    "RoutingRequest",
    "ShortestQueuePolicy",
    "UnknownPolicyError",
    "WorkerMetrics",
]
