"""ServerManager: the one place that launches and stops SGLang servers, simulators and routers."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import socket
import tempfile
import urllib.request
import weakref
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from ..config.router_config import RouterConfig
from ..config.server_config import ServerConfig
from ..errors import ServerLaunchError
from ..http_api import auth_headers
from .argv import coverage_rc, coverage_rcfile, server_argv, server_env
from .process import ManagedProcess
from .readiness import port_is_free, probe_ok, wait_until_ready
from .router import start_router
from .server import ProcessExit, RouterHandle, SGLangServer

__all__ = ["ServerManager", "kill_all_processes"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

_LIVE_MANAGERS: weakref.WeakSet[ServerManager] = weakref.WeakSet()


def _stop_live_managers() -> None:
    for manager in list(_LIVE_MANAGERS):
        manager.stop_all()


atexit.register(_stop_live_managers)


def kill_all_processes() -> None:
    """SIGKILL every process group any live ServerManager started, without waiting (a second Ctrl-C)."""
    for manager in list(_LIVE_MANAGERS):
        processes = [h.process for h in manager.routers.values()] + [s.process for s in manager.servers.values()]
        for process in processes:
            if process is not None:
                process.kill_now()


class ServerManager:
    """Launches servers (``backend`` sim | sglang | external) and routers; stops them all on exit.

    Use it as a context manager (sync or async) so every process it started is stopped, also on
    exceptions and Ctrl-C; an ``atexit`` hook stops any that remain, and each child also gets SIGTERM
    from the kernel if this process dies abruptly (PR_SET_PDEATHSIG).
    """

    def __init__(self, log_dir: str | Path | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="sglang_test_logs_"))
        self.servers: dict[str, SGLangServer] = {}
        self.routers: dict[str, RouterHandle] = {}
        self._reserved_ports: set[int] = set()
        _LIVE_MANAGERS.add(self)

    # ----------------------------------------------------------------------------- ports
    def allocate_port(self, host: str = "127.0.0.1") -> int:
        """A free TCP port on ``host`` not handed out before by this manager."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in self._reserved_ports:
                self._reserved_ports.add(port)
                return port
        raise ServerLaunchError(f"could not find a free port on {host}")

    def _resolve_port(self, config: ServerConfig) -> int:
        if config.port == 0:
            return self.allocate_port(config.host)
        if config.port in self._reserved_ports or not port_is_free(config.host, config.port):
            raise ServerLaunchError(
                f"port {config.port} on {config.host} is already in use (another server?); set port to a "
                f"free port, or port=0 to pick one automatically"
            )
        self._reserved_ports.add(config.port)
        return config.port

    # ----------------------------------------------------------------------------- servers
    def _new_id(self, config: ServerConfig) -> str:
        if config.server_id:
            if config.server_id in self.servers:
                raise ServerLaunchError(f"server_id {config.server_id!r} is already used; pick another")
            return config.server_id
        return f"server_{len(self.servers)}"

    def _spawn(self, config: ServerConfig) -> SGLangServer:
        server_id = self._new_id(config)
        if config.backend == "external":
            assert config.url is not None
            server = SGLangServer(server_id, config, config.url.rstrip("/"))
        else:
            port = self._resolve_port(config)
            if config.server_id is None:
                config = config.model_copy(update={"server_id": server_id})
            if config.coverage and not coverage_rcfile(config.coverage_dir or Path("coverage")).is_file():
                coverage_dir = config.coverage_dir or Path("coverage")
                coverage_dir.mkdir(parents=True, exist_ok=True)
                coverage_rcfile(coverage_dir).write_text(coverage_rc(config, coverage_dir))
            process = ManagedProcess(
                server_id, server_argv(config, port), self.log_dir / f"{server_id}.log", server_env(config)
            )
            process.start()
            server = SGLangServer(server_id, config, f"http://{config.host}:{port}", process)
        self.servers[server_id] = server
        return server

    async def _wait_ready(self, server: SGLangServer) -> None:
        headers = auth_headers(server.config.api_key)
        url = f"{server.base_url}/health_generate"

        async def probe(session: Any) -> bool:
            return await probe_ok(session, url, headers)

        try:
            server.startup_s = await wait_until_ready(
                f"{server.server_id} ({server.config.backend} at {server.base_url})",
                probe,
                server.config.startup_timeout_s,
                server.process,
            )
        except BaseException:
            self.stop_server(server.server_id)
            raise
        server.server_info = await asyncio.to_thread(self._fetch_json, server, "/server_info")
        logger.info("%s ready in %.1fs at %s", server.server_id, server.startup_s, server.base_url)

    async def start_server(self, config: ServerConfig) -> SGLangServer:
        """Launch one server and wait until ``/health_generate`` answers 200 (async)."""
        server = self._spawn(config)
        await self._wait_ready(server)
        return server

    async def start_servers(self, configs: Sequence[ServerConfig]) -> list[SGLangServer]:
        """Launch several servers at once and wait for all of them (async)."""
        servers = [self._spawn(c) for c in configs]
        try:
            await asyncio.gather(*(self._wait_ready(s) for s in servers))
        except BaseException:
            for s in servers:
                self.stop_server(s.server_id)
            raise
        return servers

    def launch_server(self, config: ServerConfig) -> SGLangServer:
        """Synchronous :meth:`start_server` (not from inside a running event loop)."""
        return _run_sync(self.start_server(config), "launch_server", "start_server")

    def launch_multiple_servers(self, configs: Sequence[ServerConfig]) -> list[SGLangServer]:
        """Synchronous :meth:`start_servers`."""
        return _run_sync(self.start_servers(configs), "launch_multiple_servers", "start_servers")

    def stop_server(self, server_id: str, timeout_s: float = 10.0) -> None:
        """Stop one server (SIGTERM its process group, then SIGKILL) and forget it."""
        server = self.servers.pop(server_id, None)
        if server is not None and server.process is not None:
            server.process.stop(timeout_s)

    def kill_server(self, server_id: str) -> None:
        """SIGKILL a server without forgetting it (failure injection: its log and id stay)."""
        server = self.servers.get(server_id)
        if server is not None and server.process is not None:
            server.killed_on_purpose = True
            server.process.kill()

    async def restart_server(self, server_id: str) -> SGLangServer:
        """Start a stopped or killed server again on the same port (recovery after failure injection)."""
        server = self.servers.get(server_id)
        if server is None or server.process is None:
            raise ServerLaunchError(f"cannot restart {server_id!r}: not a server this manager launched")
        server.process.stop()
        port = int(server.base_url.rsplit(":", 1)[1])
        server.process = ManagedProcess(
            server_id, server_argv(server.config, port), self.log_dir / f"{server_id}.log", server_env(server.config)
        )
        server.process.start()
        server.killed_on_purpose = False
        await self._wait_ready(server)
        return server

    # ----------------------------------------------------------------------------- routers
    async def start_router(
        self, config: RouterConfig, worker_urls: Sequence[str], policy: str = "cache_aware"
    ) -> RouterHandle:
        """Launch the real sglang-router and wait until all workers are registered and healthy."""
        router_id = f"router_{len(self.routers)}"
        port = config.port or self.allocate_port(config.host)
        prom_port = config.prometheus_port or self.allocate_port(config.prometheus_host)
        handle = await start_router(
            router_id,
            config,
            policy,
            list(worker_urls),
            port,
            prom_port,
            self.log_dir / f"{router_id}.log",
            self.routers,
        )
        return handle

    def launch_router(
        self, config: RouterConfig, worker_urls: Sequence[str], policy: str = "cache_aware"
    ) -> RouterHandle:
        """Synchronous :meth:`start_router`."""
        return _run_sync(self.start_router(config, worker_urls, policy), "launch_router", "start_router")

    def stop_router(self, router_id: str) -> None:
        """Stop one router process."""
        handle = self.routers.pop(router_id, None)
        if handle is not None and handle.process is not None:
            handle.process.stop()

    # ----------------------------------------------------------------------------- info
    def _fetch_text(self, server: SGLangServer, path: str) -> str:
        req = urllib.request.Request(server.base_url + path, headers=auth_headers(server.config.api_key))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.read().decode())

    def _fetch_json(self, server: SGLangServer, path: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fetch_text(server, path))
        except (OSError, ValueError) as exc:
            logger.warning("could not read %s%s: %s", server.base_url, path, exc)
            return {}
        return data if isinstance(data, dict) else {"value": data}

    def get_server_metrics(self, server_id: str) -> dict[str, Any]:
        """Current ``/metrics`` (summed over labels, by sample name) and ``/server_info`` of a server."""
        server = self.servers.get(server_id)
        if server is None:
            raise KeyError(f"unknown server_id {server_id!r}; known: {sorted(self.servers)}")
        metrics: dict[str, float] = {}
        try:
            text = self._fetch_text(server, "/metrics")
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    metrics[sample.name] = metrics.get(sample.name, 0.0) + float(sample.value)
        except (OSError, ValueError) as exc:
            logger.warning("could not read %s/metrics: %s", server.base_url, exc)
        return {"metrics": metrics, "server_info": self._fetch_json(server, "/server_info")}

    def update_server_param(self, server_id: str, param: str, value: Any) -> bool:
        """Always False: SGLang has no API to change server args at run time; restart the server with a
        new :class:`ServerConfig` instead (``stop_server`` then ``launch_server``)."""
        logger.warning(
            "update_server_param(%s, %s=%r): SGLang cannot change server args at run time; "
            "restart the server with the new value instead",
            server_id,
            param,
            value,
        )
        return False

    def unexpected_exits(self) -> list[ProcessExit]:
        """Servers and routers we launched that have exited although nobody stopped or killed them."""
        exits: list[ProcessExit] = []
        handles: list[tuple[str, ManagedProcess | None, bool]] = [
            (s.server_id, s.process, s.killed_on_purpose) for s in self.servers.values()
        ]
        handles += [(r.router_id, r.process, False) for r in self.routers.values()]
        for name, process, expected in handles:
            code = process.returncode if process is not None else None
            if code is not None and not expected:
                exits.append(ProcessExit(name, code, process.log_tail(20) if process is not None else ""))
        return exits

    # ----------------------------------------------------------------------------- lifecycle
    def stop_all(self) -> None:
        """Stop every router, then every server. Safe to call more than once."""
        for router_id in list(self.routers):
            self.stop_router(router_id)
        for server in self.servers.values():  # SIGTERM everybody first, then wait for each
            if server.process is not None:
                server.process.terminate()
        for server_id in list(self.servers):
            self.stop_server(server_id)

    def __enter__(self) -> ServerManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    async def __aenter__(self) -> ServerManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop_all)


def _run_sync(coro: Coroutine[Any, Any, T], name: str, async_name: str) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError(f"ServerManager.{name}() cannot run inside an event loop; await {async_name}() instead")
