"""Pydantic configuration models and YAML loading."""

from __future__ import annotations

from .node_config import NodeConfig
from .router_config import RouterConfig
from .routing_config import RoutingConfig
from .server_config import ServerConfig
from .sweep_config import SweepConfig
from .workload import WorkloadConfig

__all__ = ["NodeConfig", "RouterConfig", "RoutingConfig", "ServerConfig", "SweepConfig", "WorkloadConfig"]
