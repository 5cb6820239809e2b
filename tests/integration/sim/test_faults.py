"""Every fault flag: the client records the failure and the run finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.records import Request, RequestRecord
from tests.conftest import wait_http


async def run(url: str, n: int, out: int = 5, timeout_s: float = 30.0, gap_s: float = 0.0) -> list[RequestRecord]:
    async with RequestSender(timeout_s=timeout_s) as sender:
        recs = []
        for i in range(n):
            recs.append(await sender.send_request(Request(f"f{i}", "one two three", 3, out), url + "/generate"))
            await asyncio.sleep(gap_s)
        return recs


async def test_fail_first_n(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-fail-first-n", "2", "--sim-fail-status", "503")
    recs = await run(sim.url, 4)
    assert [r.success for r in recs] == [False, False, True, True]
    assert recs[0].http_status == 503 and recs[0].error_type == "http"


async def test_random_failure_rate(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-fail-rate", "0.5", "--random-seed", "3")
    recs = await run(sim.url, 20)
    failed = [r for r in recs if not r.success]
    assert 0 < len(failed) < 20 and all(r.http_status == 500 for r in failed)


async def test_hang_is_a_client_timeout(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-hang-after-n", "1")
    recs = await run(sim.url, 2, timeout_s=1.0)
    assert recs[0].success and not recs[1].success and recs[1].error_type == "timeout"


async def test_crash_after_requests(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-crash-after-requests", "3")
    recs = await run(sim.url, 4)
    assert [r.success for r in recs[:2]] == [True, True]
    assert not recs[2].success and recs[2].error_type == "connection"
    assert not recs[3].success
    assert sim.proc.wait(timeout=5) == 1


async def test_crash_after_seconds_mid_stream(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-crash-after-s", "0.5", "--sim-slowdown", "20")
    recs = await run(sim.url, 1, out=200)
    assert not recs[0].success and recs[0].error_type in ("stream", "connection")
    assert recs[0].output_tokens > 0  # what streamed before the crash is kept


async def test_health_fails_after_t(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-health-fail-after-s", "0.5")
    async with aiohttp.ClientSession() as s:
        async with s.get(sim.url + "/health") as r:
            assert r.status == 200
        await asyncio.sleep(0.7)
        async with s.get(sim.url + "/health_generate") as r:
            assert r.status == 503


async def test_startup_delay_means_503_until_ready(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--sim-startup-delay-s", "1.5", wait=False)
    wait_http(sim.url + "/model_info", proc=sim.proc)  # listening, not ready
    async with aiohttp.ClientSession() as s, s.get(sim.url + "/health") as r:
        assert r.status == 503
    t0 = time.monotonic()
    wait_http(sim.url + "/health", proc=sim.proc)
    assert time.monotonic() - t0 > 0.3


async def test_slowdown_makes_requests_slower(start_sim: Callable[..., Any]) -> None:
    fast = start_sim()
    slow = start_sim("--sim-slowdown", "4")
    f = (await run(fast.url, 1, out=30))[0]
    s = (await run(slow.url, 1, out=30))[0]
    assert (s.finish_ns or 0) - s.send_ns > 2 * ((f.finish_ns or 0) - f.send_ns)
