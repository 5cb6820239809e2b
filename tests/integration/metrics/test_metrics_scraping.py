"""Scraping real HTTP endpoints: a tiny in-test aiohttp server serving SGLang-style Prometheus text."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from sglang_test_framework.errors import FrameworkError
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.prometheus import ScrapeTarget, fetch_server_metrics
from tests.conftest import serving

LABELS = 'model_name="m",engine_type="unified",tp_rank="0",pp_rank="0",moe_ep_rank="0"'


def page(n: int) -> str:
    return (
        "# HELP sglang:num_running_reqs running\n# TYPE sglang:num_running_reqs gauge\n"
        f"sglang:num_running_reqs{{{LABELS}}} {n}\n"
        "# HELP sglang:num_queue_reqs queued\n# TYPE sglang:num_queue_reqs gauge\n"
        f"sglang:num_queue_reqs{{{LABELS}}} {2 * n}\n"
        "# HELP sglang:num_requests_total requests\n# TYPE sglang:num_requests_total counter\n"
        f'sglang:num_requests_total{{model_name="m",engine_type="unified"}} {10 * n}\n'
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Base URL of a server with ``/metrics`` (values grow per scrape) and ``/broken`` (HTTP 500)."""
    hits = {"n": 0}

    async def metrics(_: web.Request) -> web.Response:
        hits["n"] += 1
        return web.Response(text=page(hits["n"]), content_type="text/plain")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="internal error")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/broken", broken)
    async with serving(app) as url:
        yield url


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


async def test_collector_time_series_from_a_live_endpoint(server: str) -> None:
    collector = MetricsCollector()
    counters = {"client_in_flight": 0.0}
    before_ns = time.monotonic_ns()
    await collector.start_collection(
        [ScrapeTarget("s1", f"{server}/metrics"), ScrapeTarget("me", "", pid=os.getpid())],
        interval_s=0.05,
        client_sampler=lambda: counters,
    )
    await asyncio.sleep(0.3)
    await collector.stop_collection()
    after_ns = time.monotonic_ns()

    ts = collector.timeseries_dataframe()
    running = ts[(ts["target"] == "s1") & (ts["metric"] == "sglang:num_running_reqs")]
    assert len(running) >= 2 and running["value"].is_monotonic_increasing  # first tick + final sample
    assert set(ts["metric"]) >= {"sglang:num_queue_reqs", "sglang:num_requests_total", "process_rss_bytes"}
    assert (ts[ts["target"] == "client"]["metric"] == "client_in_flight").any()
    assert ts["t_s"].min() == 0.0 and ts["t_s"].max() <= (after_ns - before_ns) / 1e9
    assert collector.scrape_errors == [] and collector.get_metrics()["scrape_errors"] == 0


async def test_failed_scrapes_are_recorded_not_raised(server: str) -> None:
    collector = MetricsCollector()

    def broken_sampler() -> dict[str, float]:
        raise RuntimeError("sampler bug")

    await collector.start_collection(
        [ScrapeTarget("dead", closed_port_url(), timeout_s=1.0), ScrapeTarget("bad", f"{server}/broken")],
        interval_s=0.05,
        client_sampler=broken_sampler,
    )
    await asyncio.sleep(0.15)
    await collector.stop_collection()
    failed_targets = {f.target for f in collector.scrape_errors}
    assert failed_targets == {"dead", "bad", "client"}
    assert any("HTTP 500" in f.error for f in collector.scrape_errors if f.target == "bad")
    ts = collector.timeseries_dataframe()
    assert set(ts["metric"]) == {"scrape_error"} and ts["labels"].str.startswith("error=").all()
    await collector.stop_collection()  # stopping twice is a no-op


async def test_collection_cannot_start_twice(server: str) -> None:
    collector = MetricsCollector()
    await collector.start_collection([ScrapeTarget("s1", f"{server}/metrics")], interval_s=0.05)
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await collector.start_collection([], interval_s=0.05)
    finally:
        await collector.stop_collection()


async def test_fetch_server_metrics_sums_over_labels(server: str) -> None:
    values = await fetch_server_metrics(f"{server}/metrics")
    assert values["sglang:num_running_reqs"] == 1.0 and values["sglang:num_requests_total"] == 10.0
    with pytest.raises(FrameworkError, match="HTTP 500"):
        await fetch_server_metrics(f"{server}/broken")
    with pytest.raises(FrameworkError, match="enable-metrics"):
        await fetch_server_metrics(closed_port_url(), timeout_s=1.0)
