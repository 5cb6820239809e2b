"""RoutingFactory: routing policies by name — the built-ins plus any the user registers."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

from ...config.router_config import RouterConfig
from ...errors import ConfigError
from .base import BaseRoutingPolicy
from .builtin import PowerOfTwoPolicy, RandomPolicy, RoundRobinPolicy, ShortestQueuePolicy
from .cache_aware import CacheAwarePolicy

__all__ = ["ROUTER_KNOBS", "InvalidPolicyError", "RoutingFactory", "UnknownPolicyError"]

ROUTER_KNOBS: dict[str, str] = {
    "cache_threshold": "cache_threshold",
    "balance_abs_threshold": "balance_abs_threshold",
    "balance_rel_threshold": "balance_rel_threshold",
    "max_tree_size": "max_tree_size",
    "eviction_interval_secs": "eviction_interval_s",
}
"""RouterConfig field → policy constructor keyword, for the knobs the real router and our policies share."""

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _constructor_keywords(policy_cls: type[BaseRoutingPolicy]) -> set[str]:
    """Keyword names ``policy_cls(...)`` accepts: its ``__init__``'s, plus its bases' while each
    ``__init__`` forwards ``**kwargs`` (so a pass-through subclass of CacheAwarePolicy gets the knobs,
    and one of BaseRoutingPolicy gets none)."""
    names: set[str] = set()
    for klass in policy_cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in _NAMED)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return names


def _router_knobs(policy_cls: type[BaseRoutingPolicy], router_config: RouterConfig) -> dict[str, Any]:
    """The :data:`ROUTER_KNOBS` of ``router_config`` that ``policy_cls`` accepts, by constructor keyword."""
    accepted = _constructor_keywords(policy_cls)
    return {keyword: getattr(router_config, field) for field, keyword in ROUTER_KNOBS.items() if keyword in accepted}


class UnknownPolicyError(ConfigError, ValueError):
    """No policy is registered under the requested name (the message lists the registered ones)."""


class InvalidPolicyError(ConfigError, TypeError):
    """A registration was refused: the class is not a BaseRoutingPolicy subclass or the name is empty."""


class RoutingFactory:
    """Registry of routing policy classes, keyed by the name ``RoutingConfig.routing_policy`` uses.

    The registry is the class attribute ``_registry`` (the package's one piece of process-wide mutable
    state, on purpose): registering a policy makes it available to every RoutingTest in the process.
    Built-ins: ``round_robin``, ``random``, ``shortest_queue``, ``power_of_two``, ``cache_aware``.
    """

    _registry: ClassVar[dict[str, type[BaseRoutingPolicy]]] = {
        "round_robin": RoundRobinPolicy,
        "random": RandomPolicy,
        "shortest_queue": ShortestQueuePolicy,
        "power_of_two": PowerOfTwoPolicy,
        "cache_aware": CacheAwarePolicy,
    }

    @classmethod
    def register(cls, name: str, policy_cls: type[BaseRoutingPolicy]) -> None:
        """Make ``policy_cls`` available as ``routing_policy=name``; re-registering a name replaces it.

        Args:
            name: Policy name (surrounding whitespace is stripped).
            policy_cls: A subclass of :class:`BaseRoutingPolicy` (the class, not an instance).

        Raises:
            InvalidPolicyError: ``name`` is empty or ``policy_cls`` is not a BaseRoutingPolicy subclass.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidPolicyError(
                f"RoutingFactory.register: the policy name must be a non-empty string, got {name!r}"
            )
        if not (isinstance(policy_cls, type) and issubclass(policy_cls, BaseRoutingPolicy)):
            raise InvalidPolicyError(
                f"RoutingFactory.register({name!r}, {policy_cls!r}): pass a subclass of "
                "sglang_test_framework.strategies.routing.base.BaseRoutingPolicy (the class itself, not an instance)"
            )
        cls._registry[name.strip()] = policy_cls

    @classmethod
    def available(cls) -> list[str]:
        """Registered policy names, sorted."""
        return sorted(cls._registry)

    @classmethod
    def get(cls, name: str) -> type[BaseRoutingPolicy]:
        """The class registered as ``name``.

        Raises:
            UnknownPolicyError: Nothing is registered under ``name``.
        """
        try:
            return cls._registry[name.strip()]
        except KeyError:
            raise UnknownPolicyError(
                f"unknown routing policy {name!r}; available: {', '.join(cls.available())} "
                "(register your own with RoutingFactory.register(name, cls))"
            ) from None

    @classmethod
    def create(
        cls, name: str, workers: Sequence[str], *, router_config: RouterConfig | None = None, **kwargs: Any
    ) -> BaseRoutingPolicy:
        """A new instance of the policy registered as ``name``.

        Args:
            name: Registered policy name.
            workers: Worker ids passed to the policy's constructor.
            router_config: Router knobs (:data:`ROUTER_KNOBS`: cache_threshold, balance_*_threshold,
                max_tree_size, eviction_interval_secs) passed to the policy when its constructor names
                them, so the Python cache_aware policy runs with the same settings as the real router.
            **kwargs: Policy-specific options, e.g. ``seed`` for random / power_of_two or
                ``cache_threshold`` for cache_aware; they win over ``router_config``.

        Raises:
            UnknownPolicyError: Nothing is registered under ``name``.
            InvalidPolicyError: The policy does not accept one of ``kwargs``.
        """
        policy_cls = cls.get(name)
        if router_config is not None:
            kwargs = {**_router_knobs(policy_cls, router_config), **kwargs}
        try:
            return policy_cls(list(workers), **kwargs)
        except TypeError as exc:
            if kwargs:
                raise InvalidPolicyError(f"routing policy {name!r} ({policy_cls.__name__}): {exc}") from exc
            raise
