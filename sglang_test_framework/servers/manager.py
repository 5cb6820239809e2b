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
from .process import ManagedProcess, ProcessHandle
from .ray_backend import RayFleet, RayProcess
from .readiness import port_is_free, probe_ok, wait_until_ready
from .router import start_router
from .server import ProcessExit, RouterHandle, SGLangServer
from .sim_fleet import fleet_argv, fleet_groups
from .smg import PdWorkers

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
        self._ray: RayFleet | None = None
        self._fleet_of: dict[str, str] = {}  # sim worker id → its fleet process (sim_workers_per_process > 1)
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

    def _ray_fleet(self, config: ServerConfig) -> RayFleet:
        if self._ray is None:
            self._ray = RayFleet(config.ray_address)
        elif self._ray.address != config.ray_address:
            raise ServerLaunchError(
                f"ray_address {config.ray_address!r} differs from {self._ray.address!r} of this manager's other "
                "servers; use one Ray cluster per ServerManager"
            )
        return self._ray

    def _spawn(self, config: ServerConfig) -> SGLangServer:
        server_id = self._new_id(config)
        if config.backend == "external":
            assert config.url is not None
            server = SGLangServer(server_id, config, config.url.rstrip("/"))
        elif config.placement == "ray":  # the URL is known once Ray placed it (_wait_ready)
            config = config.model_copy(update={"server_id": server_id})
            self._write_coverage_rc(config)
            ray_process = self._ray_fleet(config).launch(server_id, config, self.log_dir / f"{server_id}.log")
            server = SGLangServer(server_id, config, "", ray_process)
        else:
            port = self._resolve_port(config)
            if config.server_id is None:
                config = config.model_copy(update={"server_id": server_id})
            self._write_coverage_rc(config)
            process = ManagedProcess(
                server_id, server_argv(config, port), self.log_dir / f"{server_id}.log", server_env(config)
            )
            process.start()
            server = SGLangServer(server_id, config, f"http://{config.host}:{port}", process)
        self.servers[server_id] = server
        return server

    @staticmethod
    def _write_coverage_rc(config: ServerConfig) -> None:
        if config.coverage and not coverage_rcfile(config.coverage_dir or Path("coverage")).is_file():
            coverage_dir = config.coverage_dir or Path("coverage")
            coverage_dir.mkdir(parents=True, exist_ok=True)
            coverage_rcfile(coverage_dir).write_text(coverage_rc(config, coverage_dir))

    async def _wait_ready(self, server: SGLangServer) -> None:
        headers = auth_headers(server.config.api_key)

        # a simulated worker answers with the id we gave it, so another server on its port is never taken for it
        own_id = server.config.backend == "sim" and not any(
            a.startswith("--sim-worker-id") for a in server.config.sim_args
        )
        expect = server.config.server_id if own_id else None

        async def probe(session: Any) -> bool:
            return await probe_ok(session, f"{server.base_url}/health_generate", headers, expect)

        try:
            if isinstance(server.process, RayProcess):
                server.base_url = await server.process.placed(server.config.startup_timeout_s)
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

    async def _connect_ray(self, configs: Sequence[ServerConfig]) -> None:
        """Connect to Ray (off the event loop: it takes seconds) before placing servers there."""
        on_ray = [c for c in configs if c.placement == "ray" and c.backend != "external"]
        if on_ray and self._ray is None:
            self._ray = await asyncio.to_thread(RayFleet, on_ray[0].ray_address)

    async def start_server(self, config: ServerConfig) -> SGLangServer:
        """Launch one server and wait until ``/health_generate`` answers 200 (async)."""
        await self._connect_ray([config])
        server = self._spawn(config)
        await self._wait_ready(server)
        return server

    async def start_servers(self, configs: Sequence[ServerConfig]) -> list[SGLangServer]:
        """Launch several servers at once and wait for all of them (async)."""
        await self._connect_ray(configs)
        servers = [s for group in fleet_groups(configs) for s in self._spawn_group(group)]
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

    def _spawn_group(self, group: list[ServerConfig]) -> list[SGLangServer]:
        """One server per config: a process each, or one sim fleet process for the whole group."""
        if len(group) == 1 and group[0].sim_workers_per_process == 1:
            return [self._spawn(group[0])]
        fleet_id = f"sim_fleet_{len(set(self._fleet_of.values()))}"
        workers: list[tuple[ServerConfig, int]] = []
        for config in group:
            server_id = self._new_id(config) if config.server_id else f"server_{len(self.servers) + len(workers)}"
            workers.append((config.model_copy(update={"server_id": server_id}), self._resolve_port(config)))
        self._write_coverage_rc(workers[0][0])
        process = ManagedProcess(
            fleet_id, fleet_argv(workers), self.log_dir / f"{fleet_id}.log", server_env(workers[0][0])
        )
        process.start()
        servers = []
        for config, port in workers:
            assert config.server_id is not None
            server = SGLangServer(config.server_id, config, f"http://{config.host}:{port}", process)
            self.servers[config.server_id] = server
            self._fleet_of[config.server_id] = fleet_id
            servers.append(server)
        return servers

    def _refuse_fleet_member(self, server_id: str, action: str) -> None:
        if server_id in self._fleet_of:
            raise ServerLaunchError(
                f"cannot {action} {server_id!r} alone: it shares process {self._fleet_of[server_id]} with other sim "
                "workers (sim_workers_per_process > 1); use sim_workers_per_process=1 for failure injection, or "
                "the sim's own crash faults (--sim-crash-after-s) which stop one fleet worker"
            )

    def stop_server(self, server_id: str, timeout_s: float = 10.0) -> None:
        """Stop one server (SIGTERM its process group, then SIGKILL) and forget it. A worker of a sim
        fleet process is forgotten; the process stops with the last of its workers."""
        server = self.servers.pop(server_id, None)
        fleet = self._fleet_of.pop(server_id, None)
        if fleet is not None and fleet in self._fleet_of.values():
            return
        if server is not None and server.process is not None:
            server.process.stop(timeout_s)

    def kill_server(self, server_id: str) -> None:
        """SIGKILL a server without forgetting it (failure injection: its log and id stay)."""
        self._refuse_fleet_member(server_id, "kill")
        server = self.servers.get(server_id)
        if server is not None and server.process is not None:
            server.killed_on_purpose = True
            server.process.kill()

    async def restart_server(self, server_id: str) -> SGLangServer:
        """Start a stopped or killed server again on the same port (recovery after failure injection)."""
        self._refuse_fleet_member(server_id, "restart")
        server = self.servers.get(server_id)
        if server is None or server.process is None:
            raise ServerLaunchError(f"cannot restart {server_id!r}: not a server this manager launched")
        if isinstance(server.process, RayProcess):  # same actor: same node, port and GPUs
            await asyncio.to_thread(server.process.restart)
        else:
            server.process.stop()
            port = int(server.base_url.rsplit(":", 1)[1])
            log_path = self.log_dir / f"{server_id}.log"
            process = ManagedProcess(server_id, server_argv(server.config, port), log_path, server_env(server.config))
            process.start()
            server.process = process
        server.killed_on_purpose = False
        await self._wait_ready(server)
        return server

    # ----------------------------------------------------------------------------- routers
    async def start_router(
        self,
        config: RouterConfig,
        worker_urls: Sequence[str],
        policy: str = "cache_aware",
        pd: PdWorkers | None = None,
    ) -> RouterHandle:
        """Launch the real router (SMG or sglang-router, ``config.implementation``) and wait until all
        workers are registered and healthy. With ``pd`` (SMG only) it runs in PD mode on those prefill
        and decode workers (``worker_urls`` is then ignored)."""
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
            pd,
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
        handles: list[tuple[str, ProcessHandle | None, bool]] = [
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
        if self._ray is not None:
            self._ray.close()
            self._ray = None

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
