"""Checks of the client-on-Ray fields of :class:`~.workload.WorkloadConfig` (``client_nodes``,
``client_ray_address``; docs/scaling.md)."""

from __future__ import annotations

import importlib.util
from typing import Protocol

from .server_config import RAY_EXTRA_HINT

__all__ = ["check_client_nodes"]


class _ClientNodeFields(Protocol):
    client_nodes: int | None
    client_processes: int | None
    client_ray_address: str | None
    max_concurrency: int | None


def check_client_nodes(config: _ClientNodeFields) -> None:
    """``client_nodes`` needs Ray and at least one shard per node; ``client_ray_address`` needs it.

    Raises:
        ValueError: The message names the field and the fix.
    """
    nodes = config.client_nodes
    if nodes is None:
        if config.client_ray_address is not None:
            raise ValueError("client_ray_address needs client_nodes (the number of Ray nodes the client runs on)")
        return
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"client_nodes needs Ray, which is not installed: {RAY_EXTRA_HINT}")
    if config.client_processes is not None and config.client_processes < nodes:
        raise ValueError(
            f"client_processes ({config.client_processes}) < client_nodes ({nodes}): every node needs ≥ 1 client "
            "process; raise client_processes or omit it (one per node)"
        )
    if config.max_concurrency is not None and config.max_concurrency < nodes:
        raise ValueError(
            f"client_nodes: {nodes} nodes cannot share max_concurrency={config.max_concurrency}; "
            f"use client_nodes ≤ {config.max_concurrency}"
        )
