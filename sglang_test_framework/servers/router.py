"""Launching the real SGLang router (``python -m sglang_router.launch_router``) and waiting for it.

Readiness is ``GET /readiness`` == 200 **and** ``GET /workers`` listing every worker as healthy; the
router's ``/health`` always answers 200 and says nothing about its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from ..config.router_config import RouterConfig
from ..config.routing_config import REAL_ROUTER_POLICIES
from ..errors import RouterError, ServerLaunchError
from ..http_api import auth_headers
from .argv import router_argv
from .process import ManagedProcess
from .readiness import wait_until_ready
from .server import RouterHandle

__all__ = ["REAL_ROUTER_POLICIES", "fetch_router_workers", "start_router"]


async def fetch_router_workers(
    session: aiohttp.ClientSession, base_url: str, api_key: str | None = None
) -> list[dict[str, Any]]:
    """The router's ``GET /workers`` list ([] when it cannot be read)."""
    try:
        async with session.get(
            f"{base_url}/workers", headers=auth_headers(api_key), timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            if resp.status != 200:
                return []
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
        return []
    workers = data.get("workers", []) if isinstance(data, dict) else []
    return [w for w in workers if isinstance(w, dict)]


def _all_healthy(workers: list[dict[str, Any]], expected: list[str]) -> bool:
    healthy = {str(w.get("url", "")).rstrip("/") for w in workers if w.get("is_healthy")}
    return all(url.rstrip("/") in healthy for url in expected)


async def start_router(
    router_id: str,
    config: RouterConfig,
    policy: str,
    worker_urls: list[str],
    port: int,
    prometheus_port: int,
    log_path: Path,
    registry: dict[str, RouterHandle],
) -> RouterHandle:
    """Spawn the router, register it in ``registry``, and wait until every worker is healthy in it."""
    if policy not in REAL_ROUTER_POLICIES:
        raise RouterError(
            f"policy {policy!r} is not a policy of the real sglang-router "
            f"({', '.join(REAL_ROUTER_POLICIES)}); use the Python router for it"
        )
    if not worker_urls:
        raise RouterError("the router needs at least one worker URL")
    process = ManagedProcess(router_id, router_argv(config, policy, worker_urls, port, prometheus_port), log_path)
    process.start()
    base_url = f"http://{config.host}:{port}"
    handle = RouterHandle(
        router_id,
        config,
        policy,
        base_url,
        list(worker_urls),
        process,
        f"http://{config.prometheus_host}:{prometheus_port}/metrics",
    )
    registry[router_id] = handle

    async def probe(session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{base_url}/readiness", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
                if resp.status != 200:
                    return False
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False
        return _all_healthy(await fetch_router_workers(session, base_url, config.api_key), worker_urls)

    try:
        handle.startup_s = await wait_until_ready(
            f"router {router_id} ({policy}) at {base_url}", probe, config.startup_timeout_s, process, interval_s=0.25
        )
    except ServerLaunchError as exc:
        registry.pop(router_id, None)
        process.stop()
        raise RouterError(str(exc)) from exc
    except BaseException:
        registry.pop(router_id, None)
        with contextlib.suppress(Exception):
            process.stop()
        raise
    return handle
