"""sglang_test_framework: async load generation and serving tests for SGLang.

Public API (everything else is internal)::

    from sglang_test_framework import NodeConfig, NodeTest, RoutingConfig, RoutingTest
"""

from __future__ import annotations

from .analysis.compare import compare_results
from .client.request_sender import RequestSender
from .config.node_config import NodeConfig
from .config.router_config import RouterConfig
from .config.routing_config import RoutingConfig
from .config.server_config import ServerConfig
from .config.sweep_config import SweepConfig
from .config.workload import WorkloadConfig
from .errors import ConfigError, DatasetError, FrameworkError, RouterError, ServerLaunchError
from .load.request_generator import RequestGenerator
from .metrics.collector import MetricsCollector
from .records import Request, RequestRecord
from .results import RunResults
from .scenarios.node import NodeTest
from .scenarios.routing import RoutingTest
from .scenarios.slo_search import find_max_rate
from .scenarios.soak import run_soak
from .scenarios.sweep import run_sweep
from .servers.manager import ServerManager
from .servers.server import SGLangServer
from .strategies.routing.base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics
from .strategies.routing.factory import RoutingFactory

__version__ = "0.1.0"

__all__ = [
    "BaseRoutingPolicy",
    "ConfigError",
    "DatasetError",
    "FrameworkError",
    "MetricsCollector",
    "NodeConfig",
    "NodeTest",
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
    "ServerConfig",
    "ServerLaunchError",
    "ServerManager",
    "SweepConfig",
    "WorkerMetrics",
    "WorkloadConfig",
    "compare_results",
    "find_max_rate",
    "run_soak",
    "run_sweep",
]
