"""The real sglang-router 0.3.2 (from PyPI) registers three simulated workers and routes with every policy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.servers.manager import ServerManager


@pytest.mark.parametrize("policy", ["cache_aware", "round_robin", "random", "power_of_two"])
async def test_router_routes_to_sim_workers(start_sim: Callable[..., Any], tmp_path: Any, policy: str) -> None:
    sims = [start_sim(worker_id=f"w{i}") for i in range(3)]
    async with ServerManager(log_dir=tmp_path) as manager:
        router = await manager.start_router(
            RouterConfig(implementation="sglang-router", worker_startup_check_interval=1), [s.url for s in sims], policy
        )
        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> str:
                body = {"text": f"request {i} " * (i % 5 + 1), "sampling_params": {"max_new_tokens": 20}}
                async with session.post(router.base_url + "/generate", json=body) as resp:
                    assert resp.status == 200
                    data = await resp.json()
                    assert data["meta_info"]["completion_tokens"] == 20
                    return resp.headers.get("X-Worker-Id", "")

            seen = set(await asyncio.gather(*(one(i) for i in range(24))))
            assert len(seen - {""}) >= 2, seen  # traffic reached several workers, attributed by header
            if policy == "power_of_two":
                await asyncio.sleep(2.5)  # let the load monitor poll /get_load
                async with session.get(router.base_url + "/get_loads") as resp:
                    text = await resp.text()
                assert resp.status == 200 and "-1" not in text.replace(" ", ""), text
