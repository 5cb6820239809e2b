"""Pydantic configuration models and YAML loading."""

from __future__ import annotations

from .node_config import NodeConfig
from .router_config import RouterConfig
from .routing_config import RoutingConfig
from .secrets import API_KEY_ENV
from .server_config import ServerConfig, ServerSettings
from .sweep_config import SweepConfig
from .workload import WorkloadConfig

__all__ = [
    "API_KEY_ENV",
    "NodeConfig",
    "RouterConfig",
    "RoutingConfig",
    "ServerConfig",
    "ServerSettings",
    "SweepConfig",
    "WorkloadConfig",
]
