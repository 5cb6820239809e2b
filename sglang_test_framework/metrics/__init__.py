"""Metrics: per-request and run-level definitions, the collector, and server scraping.

Import the modules directly (``from sglang_test_framework.metrics import definitions``); this package
re-exports only the main entry points.
"""

from __future__ import annotations

from .collector import MetricsCollector
from .prometheus import ScrapeTarget, fetch_server_metrics
from .summary import summarize

__all__ = ["MetricsCollector", "ScrapeTarget", "fetch_server_metrics", "summarize"]
