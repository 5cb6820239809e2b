"""Readiness checks that race an HTTP probe against the process exiting, with a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from ..errors import ServerLaunchError, ServerNotReadyError
from .process import ProcessHandle

__all__ = ["port_is_free", "probe_ok", "wait_until_ready"]

Probe = Callable[[aiohttp.ClientSession], Awaitable[bool]]


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port (we can bind it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def probe_ok(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str] | None = None,
    expect_worker_id: str | None = None,
) -> bool:
    """GET ``url``; True on HTTP 200, False on any other status or connection error.

    With ``expect_worker_id``, the answer must also carry that ``X-Worker-Id``: a server we did not start
    that holds the port (our process then fails to bind and exits) is never taken for ours.
    """
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            await resp.read()
            if expect_worker_id is not None and resp.headers.get("X-Worker-Id") != expect_worker_id:
                return False
            return resp.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


async def wait_until_ready(
    name: str, probe: Probe, timeout_s: float, process: ProcessHandle | None = None, interval_s: float = 0.2
) -> float:
    """Poll ``probe`` until it returns True; fail fast if ``process`` exits; time out after ``timeout_s``.

    Returns the seconds it took. Errors carry the process's log tail so the cause is visible.
    """
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            if process is not None and not process.is_running():
                raise ServerLaunchError(
                    f"{name} exited with code {process.returncode} during startup "
                    f"(log: {process.log_path}). Last log lines:\n{process.log_tail()}"
                )
            if await probe(session):
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                tail = process.log_tail() if process is not None else ""
                where = f" (log: {process.log_path})" if process is not None else ""
                raise ServerNotReadyError(
                    f"{name} was not ready after {timeout_s:.0f}s{where}; raise startup_timeout_s if it is "
                    f"just slow. Last log lines:\n{tail}"
                )
            await asyncio.sleep(interval_s)
