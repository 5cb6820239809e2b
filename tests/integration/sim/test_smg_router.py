"""The real SMG 1.13 gateway in front of three simulated workers: every policy routes, load-aware policies
see the sim's loads, routing keys stick, prefix-aware policies beat round_robin on cache hits, and
gateway 429s are told apart from worker 429s."""

from __future__ import annotations

import asyncio
import collections
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.config.router_config import SMG_POLICIES, RouterConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.records import Request
from sglang_test_framework.servers.manager import ServerManager
from sglang_test_framework.servers.server import RouterHandle, SGLangServer

pytest.importorskip("smg")

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


class Fleet:
    """Three sim workers (no ``--enable-metrics``: loads can only come from ``/v1/loads``)."""

    def __init__(self, manager: ServerManager, workers: list[SGLangServer]) -> None:
        self.manager = manager
        self.workers = workers
        self.by_url = {w.base_url: w.server_id for w in workers}

    @property
    def urls(self) -> list[str]:
        return [w.base_url for w in self.workers]

    def flush(self) -> None:
        for url in self.urls:
            with urllib.request.urlopen(
                urllib.request.Request(url + "/flush_cache?timeout=30", method="POST"), timeout=10
            ):
                pass


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    log_dir = tmp_path_factory.mktemp("smg_fleet")
    with ServerManager(log_dir=log_dir) as manager:
        configs = [
            ServerConfig(backend="sim", model_path=MODEL, port=0, server_id=f"w{i}", sim_args=["--sim-jitter-cv", "0"])
            for i in range(3)
        ]
        yield Fleet(manager, manager.launch_multiple_servers(configs))


async def _router(fleet: Fleet, policy: str, **knobs: Any) -> RouterHandle:
    return await fleet.manager.start_router(RouterConfig(implementation="smg", **knobs), fleet.urls, policy)


async def _generate(
    session: aiohttp.ClientSession, base_url: str, text: str, key: str | None = None, max_new_tokens: int = 4
) -> tuple[int, dict[str, Any], str | None, str | None]:
    headers = {"X-SMG-Routing-Key": key} if key else {}
    body = {"text": text, "sampling_params": {"max_new_tokens": max_new_tokens, "ignore_eos": True}}
    async with session.post(base_url + "/generate", json=body, headers=headers) as resp:
        data = await resp.json(content_type=None)
        return resp.status, data, resp.headers.get("X-Worker-Id"), resp.headers.get("x-smg-routed-worker-id")


@pytest.mark.parametrize("policy", SMG_POLICIES)
async def test_every_smg_policy_routes_to_the_sim_workers(fleet: Fleet, policy: str) -> None:
    router = await _router(fleet, policy)
    try:
        async with aiohttp.ClientSession() as session:
            results = [
                await _generate(session, router.base_url, f"request {i} " * (i % 5 + 1), key=f"k{i % 4}")
                for i in range(12)
            ]
    finally:
        fleet.manager.stop_router(router.router_id)
    assert [status for status, *_ in results] == [200] * 12
    assert all(data["meta_info"]["completion_tokens"] == 4 for _, data, *_ in results)
    # Attribution: SMG's routed-worker URL names the worker that answered (its own X-Worker-Id).
    assert all(routed is not None and fleet.by_url[routed] == own for _, _, own, routed in results)
    counts = collections.Counter(own for _, _, own, _ in results)
    if policy == "round_robin":
        assert sorted(counts.values()) == [4, 4, 4]
    elif policy == "passthrough":
        assert len(counts) == 1


@pytest.mark.parametrize("policy", ["manual", "consistent_hashing"])
async def test_routing_keys_stay_on_one_worker(fleet: Fleet, policy: str) -> None:
    router = await _router(fleet, policy)
    try:
        async with aiohttp.ClientSession() as session:
            keyed = [
                (f"user-{k}", await _generate(session, router.base_url, f"hi {n}", key=f"user-{k}"))
                for k in range(8)
                for n in range(4)
            ]
    finally:
        fleet.manager.stop_router(router.router_id)
    by_key: dict[str, set[str | None]] = collections.defaultdict(set)
    for key, (status, _, own, _) in keyed:
        assert status == 200
        by_key[key].add(own)
    assert all(len(workers) == 1 for workers in by_key.values()), by_key
    assert len(set().union(*by_key.values())) >= 2  # keys spread over the fleet


@pytest.mark.parametrize("policy", ["least_load", "power_of_two"])
async def test_load_aware_policies_see_the_sims_loads(fleet: Fleet, policy: str) -> None:
    """The sims run without --enable-metrics, so any load SMG shows came from their /v1/loads."""
    router = await _router(fleet, policy, load_monitor_interval=1)
    try:
        async with aiohttp.ClientSession() as session:
            busy = asyncio.create_task(_generate(session, fleet.urls[0], "long " * 50, max_new_tokens=600))
            seen: dict[str, Any] = {}
            for _ in range(40):
                await asyncio.sleep(0.25)
                async with session.get(router.base_url + "/get_loads") as resp:
                    loads = (await resp.json(content_type=None))["loads"]
                seen = {entry["worker"]: entry for entry in loads}
                if seen.get(fleet.urls[0], {}).get("num_running_reqs", 0) >= 1:
                    break
            busy.cancel()
            async with session.post(fleet.urls[0] + "/abort_request", json={"abort_all": True}) as resp:
                assert resp.status == 200
    finally:
        fleet.manager.stop_router(router.router_id)
    assert set(seen) == set(fleet.urls)
    assert all(entry["max_total_num_tokens"] > 0 for entry in seen.values()), seen
    assert seen[fleet.urls[0]]["num_running_reqs"] >= 1, seen  # the busy worker's live load reached SMG


async def _cache_hit_rate(fleet: Fleet, policy: str) -> float:
    fleet.flush()
    router = await _router(fleet, policy)
    prefixes = [f"group {g}: " + " ".join(f"w{g}x{j}" for j in range(400)) for g in range(4)]
    prompt = cached = 0
    try:
        async with aiohttp.ClientSession() as session:
            for n in range(6):
                for g, prefix in enumerate(prefixes):
                    status, data, _, _ = await _generate(session, router.base_url, f"{prefix} question {g}-{n}")
                    assert status == 200
                    prompt += data["meta_info"]["prompt_tokens"]
                    cached += data["meta_info"]["cached_tokens"]
    finally:
        fleet.manager.stop_router(router.router_id)
    return cached / prompt


async def test_prefix_aware_policies_beat_round_robin_on_cache_hits(fleet: Fleet) -> None:
    rates = {policy: await _cache_hit_rate(fleet, policy) for policy in ("round_robin", "prefix_hash", "cache_aware")}
    assert rates["prefix_hash"] > rates["round_robin"], rates
    assert rates["cache_aware"] > rates["round_robin"], rates


async def test_gateway_429_is_told_apart_from_worker_responses(fleet: Fleet) -> None:
    router = await _router(fleet, "round_robin", max_concurrent_requests=1, queue_size=0, disable_retries=True)
    try:
        async with RequestSender(model=MODEL, timeout_s=60) as sender:
            reqs = [Request(f"r{i}", "hello " * 8, 8, 200) for i in range(4)]
            records = await asyncio.gather(*(sender.send_request(r, router.base_url + "/generate") for r in reqs))
    finally:
        fleet.manager.stop_router(router.router_id)
    ok = [r for r in records if r.success]
    shed = [r for r in records if not r.success]
    assert ok and shed, [(r.success, r.error) for r in records]
    assert all(r.error_type == "gateway" and r.http_status == 429 and r.routed_worker is None for r in shed)
    assert all(r.routed_worker is not None and fleet.by_url[r.routed_worker] == r.worker_id for r in ok)
