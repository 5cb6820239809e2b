"""Launching a real router — SMG 1.13 (``python -m smg.launch_router``, regular or PD mode) or
sglang-router 0.3.2 (``python -m sglang_router.launch_router``) — and waiting for it.

Readiness is ``GET /readiness`` == 200 **and** ``GET /workers`` listing every worker as healthy; the
routers' ``/health`` always answers 200 and says nothing about the workers. (SMG's ``/readiness``
needs ≥1 healthy worker, in PD mode ≥1 prefill and ≥1 decode; we wait for all of them.)
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from ..config.router_config import RouterConfig, real_router_policies
from ..config.routing_config import REAL_ROUTER_POLICIES
from ..errors import RouterError, ServerLaunchError
from ..http_api import auth_headers
from .argv import router_argv
from .process import ManagedProcess
from .readiness import wait_until_ready
from .server import RouterHandle
from .smg import PdWorkers, smg_argv, smg_pd_argv

__all__ = ["REAL_ROUTER_POLICIES", "fetch_router_workers", "real_router_argv", "start_router"]


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


def real_router_argv(
    config: RouterConfig,
    policy: str,
    worker_urls: list[str],
    port: int,
    prometheus_port: int,
    pd: PdWorkers | None = None,
) -> list[str]:
    """argv of the router ``config.resolved_implementation`` names (``smg`` or ``sglang-router``).

    Raises:
        RouterError: the Python router was asked for, the policy is not one of that router's, PD mode
            without SMG, or no workers.
    """
    impl = config.resolved_implementation
    if impl == "python":
        raise RouterError("implementation 'python' is our in-process router; it has no command line")
    if pd is not None:
        if impl != "smg":
            raise RouterError(f"PD disaggregation needs implementation 'smg' (is {impl!r}); pip install smg")
        return smg_pd_argv(config, pd, port, prometheus_port, policy)
    policies = real_router_policies(impl)
    if policy not in policies:
        raise RouterError(
            f"policy {policy!r} is not a policy of {impl} ({', '.join(policies)}); use the Python router for it"
        )
    if not worker_urls:
        raise RouterError("the router needs at least one worker URL")
    if impl == "smg":
        return smg_argv(config, policy, worker_urls, port, prometheus_port)
    return router_argv(config, policy, worker_urls, port, prometheus_port)


async def start_router(
    router_id: str,
    config: RouterConfig,
    policy: str,
    worker_urls: list[str],
    port: int,
    prometheus_port: int,
    log_path: Path,
    registry: dict[str, RouterHandle],
    pd: PdWorkers | None = None,
) -> RouterHandle:
    """Spawn the router (SMG or sglang-router per ``config.implementation``; PD mode with ``pd``),
    register it in ``registry``, and wait until every worker is healthy in it."""
    urls = pd.urls if pd is not None else list(worker_urls)
    process = ManagedProcess(router_id, real_router_argv(config, policy, urls, port, prometheus_port, pd), log_path)
    process.start()
    base_url = f"http://{config.host}:{port}"
    handle = RouterHandle(
        router_id,
        config,
        policy,
        base_url,
        urls,
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
        return _all_healthy(await fetch_router_workers(session, base_url, config.api_key), urls)

    try:
        handle.startup_s = await wait_until_ready(
            f"router {router_id} ({config.resolved_implementation} {policy}) at {base_url}",
            probe,
            config.startup_timeout_s,
            process,
            interval_s=0.25,
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
