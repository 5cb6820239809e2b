"""sglang_test_framework: async load generation and serving tests for SGLang.

Public API (everything else is internal)::

    from sglang_test_framework import NodeConfig, NodeTest, RoutingConfig, RoutingTest

Names are imported on first use, so ``python -m sglang_test_framework.sim`` (the simulated server,
which imports nothing else from the package) starts without loading the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BaseRoutingPolicy": ".strategies.routing.base",
    "ConfigError": ".errors",
    "DatasetError": ".errors",
    "FrameworkError": ".errors",
    "MetricsCollector": ".metrics.collector",
    "NodeConfig": ".config.node_config",
    "NodeTest": ".scenarios.node",
    "RepeatedRunResults": ".results",
    "Request": ".records",
    "RequestGenerator": ".load.request_generator",
    "RequestRecord": ".records",
    "RequestSender": ".client.request_sender",
    "RouterConfig": ".config.router_config",
    "RouterError": ".errors",
    "RoutingConfig": ".config.routing_config",
    "RoutingFactory": ".strategies.routing.factory",
    "RoutingRequest": ".strategies.routing.base",
    "RoutingTest": ".scenarios.routing",
    "RunResults": ".results",
    "SGLangServer": ".servers.server",
    "SLOSearchConfig": ".config.search_config",
    "SaturationSweepConfig": ".config.search_config",
    "ServerConfig": ".config.server_config",
    "ServerLaunchError": ".errors",
    "ServerManager": ".servers.manager",
    "SweepConfig": ".config.sweep_config",
    "WorkerMetrics": ".strategies.routing.base",
    "WorkloadConfig": ".config.workload",
    "compare_results": ".analysis.compare",
    "find_max_rate": ".scenarios.slo_search",
    "run_saturation_sweep": ".scenarios.saturation",
    "run_soak": ".scenarios.soak",
    "run_sweep": ".scenarios.sweep",
}

__all__ = [
    "BaseRoutingPolicy",
    "ConfigError",
    "DatasetError",
    "FrameworkError",
    "MetricsCollector",
    "NodeConfig",
    "NodeTest",
    "RepeatedRunResults",
    "Request",
    "RequestGenerator",
    "RequestRecord",
    "RequestSender",
    "RouterConfig",
    "RouterError",
    "RoutingConfig",
    "RoutingFactory",
    "RoutingRequest",
    "RoutingTest",
    "RunResults",
    "SGLangServer",
    "SLOSearchConfig",
    "SaturationSweepConfig",
    "ServerConfig",
    "ServerLaunchError",
    "ServerManager",
    "SweepConfig",
    "WorkerMetrics",
    "WorkloadConfig",
    "compare_results",
    "find_max_rate",
    "run_saturation_sweep",
    "run_soak",
    "run_sweep",
]

if TYPE_CHECKING:
    from .analysis.compare import compare_results
    from .client.request_sender import RequestSender
    from .config.node_config import NodeConfig
    from .config.router_config import RouterConfig
    from .config.routing_config import RoutingConfig
    from .config.search_config import SaturationSweepConfig, SLOSearchConfig
    from .config.server_config import ServerConfig
    from .config.sweep_config import SweepConfig
    from .config.workload import WorkloadConfig
    from .errors import ConfigError, DatasetError, FrameworkError, RouterError, ServerLaunchError
    from .load.request_generator import RequestGenerator
    from .metrics.collector import MetricsCollector
    from .records import Request, RequestRecord
    from .results import RepeatedRunResults, RunResults
    from .scenarios.node import NodeTest
    from .scenarios.routing import RoutingTest
    from .scenarios.saturation import run_saturation_sweep
    from .scenarios.slo_search import find_max_rate
    from .scenarios.soak import run_soak
    from .scenarios.sweep import run_sweep
    from .servers.manager import ServerManager
    from .servers.server import SGLangServer
    from .strategies.routing.base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
    from .strategies.routing.factory import RoutingFactory


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return [*globals(), *__all__]
