"""RoutingFactory: policies by name (built-ins plus user-registered ones)."""

from __future__ import annotations

from typing import Any, ClassVar

from .base import BaseRoutingPolicy
from .builtin import CacheAwarePolicy, PowerOfTwoPolicy, RandomPolicy, RoundRobinPolicy, ShortestQueuePolicy

__all__ = ["RoutingFactory"]


class RoutingFactory:
    """Registry of policy classes. The registry is a class attribute: registering a policy makes it
    available to every RoutingTest in this process (that is the point of registering)."""

    _registry: ClassVar[dict[str, type[BaseRoutingPolicy]]] = {
        "round_robin": RoundRobinPolicy,
        "random": RandomPolicy,
        "shortest_queue": ShortestQueuePolicy,
        "power_of_two": PowerOfTwoPolicy,
        "cache_aware": CacheAwarePolicy,
    }

    @classmethod
    def register(cls, name: str, policy_cls: type[BaseRoutingPolicy]) -> None:
        """Make ``policy_cls`` available as ``routing_policy=name``."""
        if not (isinstance(policy_cls, type) and issubclass(policy_cls, BaseRoutingPolicy)):
            raise TypeError(f"RoutingFactory.register({name!r}, ...): the class must subclass BaseRoutingPolicy")
        if not name or not name.strip():
            raise ValueError("RoutingFactory.register: give a non-empty policy name")
        cls._registry[name] = policy_cls

    @classmethod
    def available(cls) -> list[str]:
        """Registered policy names."""
        return sorted(cls._registry)

    @classmethod
    def create(cls, name: str, workers: list[str], **kwargs: Any) -> BaseRoutingPolicy:
        """An instance of the policy registered as ``name``."""
        try:
            policy_cls = cls._registry[name]
        except KeyError:
            raise ValueError(
                f"unknown routing policy {name!r}; available: {', '.join(cls.available())} "
                "(register your own with RoutingFactory.register)"
            ) from None
        return policy_cls(workers, **kwargs)
