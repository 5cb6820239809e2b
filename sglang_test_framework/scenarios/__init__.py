"""Scenarios: what a user runs — NodeTest, RoutingTest, policy comparisons, sweeps, the SLO search, the
saturation sweep and the soak test — on top of the shared runner (warmup, dispatch, progress, results
files)."""

from __future__ import annotations

from .node import NodeTest
from .policy_comparison import compare_policies
from .routing import RoutingTest
from .saturation import run_saturation_sweep
from .slo_search import find_max_rate
from .soak import run_soak
from .sweep import run_sweep

__all__ = [
    "NodeTest",
    "RoutingTest",
    "compare_policies",
    "find_max_rate",
    "run_saturation_sweep",
    "run_soak",
    "run_sweep",
]
