"""Servers on a Ray cluster (``placement='ray'``): each server is a Ray actor that owns the server process
on its node.

The actor (:class:`ServerActor`) starts the process from its main thread with the same
:class:`~.process.ManagedProcess` as local servers (own process group, log file, PR_SET_PDEATHSIG), so
the kernel stops the server when the actor dies, and Ray kills the actor when the driver that owns it
disconnects or dies. GPU ids come from Ray (``CUDA_VISIBLE_DEVICES``), the port is a free one on the
actor's node and the URL uses the node's address; readiness is checked from the driver. On the driver,
:class:`RayProcess` has the interface of a local process (:class:`~.process.ProcessHandle`), so the
manager, the router and failure injection work unchanged; :class:`RayFleet` connects and places.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.server_config import ServerConfig
from ..errors import ServerLaunchError
from ..ray_cluster import RayConnection, import_ray, machine_id
from .argv import server_argv, server_env
from .process import ManagedProcess, log_tail
from .readiness import port_is_free

__all__ = ["LOST_EXIT_CODE", "RayFleet", "RayPlacement", "RayProcess", "ServerActor"]

logger = logging.getLogger(__name__)

LOST_EXIT_CODE = -9
"""Exit code reported for a server whose actor (or node) died: the server went with it."""

_LOG_MAX_BYTES = 16 * 1024 * 1024
_CALL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RayPlacement:
    """Where a server runs: its node's address and id, its port, pid, GPUs and machine."""

    host: str
    port: int
    pid: int
    gpu_ids: tuple[str, ...]
    node_id: str
    machine_id: str

    @property
    def base_url(self) -> str:
        """The server's URL, reachable from the driver."""
        return f"http://{self.host}:{self.port}"


class ServerActor:
    """Runs inside a Ray actor on some node and owns one server process there.

    Methods run on the actor's main thread (a plain, single-threaded actor), which is what makes
    PR_SET_PDEATHSIG of the child reliable. On the driver's machine the log goes straight to the driver's
    ``log_path``; on another node into a temporary file there, which the driver reads back.
    """

    def __init__(self, server_id: str, run_token: str, log_path: str, driver_machine_id: str) -> None:
        self._server_id = server_id
        self._shared_log = machine_id() == driver_machine_id
        temporary = Path(tempfile.gettempdir()) / "sglang_test_ray" / run_token / f"{server_id}.log"
        self._log_path = Path(log_path) if self._shared_log else temporary
        self._process: ManagedProcess | None = None
        self._argv: list[str] = []
        self._env: dict[str, str] = {}

    def start(self, config: ServerConfig) -> RayPlacement:
        """Start the server on this node: a free port (or ``config.port``), Ray's GPUs."""
        ray = import_ray()
        node_ip = str(ray.util.get_node_ip_address())
        bind = "0.0.0.0" if config.host == "0.0.0.0" else node_ip
        port = config.port or _free_port(bind)
        if config.port and not port_is_free(bind, port):
            raise ServerLaunchError(f"port {port} on {node_ip} is in use; set port=0 or base_port=0 for free ports")
        gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
        node_config = config.model_copy(update={"host": bind})
        self._argv = server_argv(node_config, port)
        self._env = server_env(node_config)
        if gpu_ids:
            self._env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        pid = self._spawn()
        node_id = str(ray.get_runtime_context().get_node_id())
        return RayPlacement(node_ip, port, pid, gpu_ids, node_id, machine_id())

    def _spawn(self) -> int:
        self._process = ManagedProcess(self._server_id, self._argv, self._log_path, self._env)
        self._process.start()
        return self._process.pid or 0

    def poll(self) -> int | None:
        """The exit code, or None while the server runs."""
        return self._process.returncode if self._process is not None else None

    def terminate(self) -> None:
        """SIGTERM the server's process group without waiting."""
        if self._process is not None:
            self._process.terminate()

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM → wait ``timeout_s`` → SIGKILL the process group; the exit code."""
        return self._process.stop(timeout_s) if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL the server's process group (failure injection); the actor stays."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> int:
        """Stop the server if it runs and start it again with the same command, port and GPUs; the new pid."""
        if self._process is not None:
            self._process.stop()
        return self._spawn()

    def read_log(self, max_bytes: int) -> bytes:
        """The last ``max_bytes`` of the server's log."""
        try:
            with self._log_path.open("rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - max_bytes))
                return fh.read()
        except OSError:
            return b""

    def remove_log(self) -> None:
        """Delete the node-local log (after the driver copied it); the driver's own file stays."""
        if self._shared_log:
            return
        with contextlib.suppress(OSError):
            self._log_path.unlink()
            self._log_path.parent.rmdir()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RayProcess:
    """Driver-side handle of a server a :class:`ServerActor` runs on a Ray node (a ``ProcessHandle``).

    Its log is copied to ``log_path`` on the driver whenever the tail is read and when it stops.
    """

    def __init__(self, name: str, connection: RayConnection, actor: Any, start_ref: Any, log_path: Path) -> None:
        self.name = name
        self._ray = connection.ray
        self._actor: Any = actor
        self._start_ref: Any = start_ref
        self._log_path = log_path
        self.placement: RayPlacement | None = None
        self._exit: int | None = None
        self._poll_ref: Any = None

    @property
    def log_path(self) -> Path:
        """The server's log on the driver (a copy of the node's log)."""
        return self._log_path

    async def placed(self, timeout_s: float) -> str:
        """Wait until Ray placed the actor and it started the server; the server's base URL."""
        if self.placement is None:
            try:
                placement = await asyncio.wait_for(asyncio.wrap_future(self._start_ref.future()), timeout_s)
            except asyncio.TimeoutError:
                raise ServerLaunchError(
                    f"Ray did not place {self.name} within {timeout_s:.0f}s: no node had its resources free "
                    "(`ray status` shows them); free them, add nodes or raise startup_timeout_s"
                ) from None
            except self._ray.exceptions.RayError as exc:
                self._exit = LOST_EXIT_CODE
                raise ServerLaunchError(f"{self.name} could not start on Ray: {_cause(exc)}") from exc
            self.placement = placement
            logger.info("%s placed on Ray node %s (GPUs %s)", self.name, placement.host, ",".join(placement.gpu_ids))
        return self.placement.base_url

    @property
    def pid(self) -> int | None:
        """The server's pid when it runs on this machine (else None: a pid means nothing here)."""
        if self.placement is None or self.placement.machine_id != machine_id():
            return None
        return self.placement.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the server exited (``LOST_EXIT_CODE`` if its actor or node died).

        Never waits on the network (the run's process watch calls it from the event loop): it reads the
        answer of the previous poll if it came, and sends the next one; an exit shows one call late.
        """
        if self._exit is not None or self.placement is None or self._actor is None:
            return self._exit
        if self._poll_ref is None:
            self._poll_ref = self._actor.poll.remote()
            return None
        ready, _ = self._ray.wait([self._poll_ref], timeout=0)
        if ready:
            ref, self._poll_ref = self._poll_ref, None
            self._note_exit(self._call_ref(ref, "poll", 0.0))
        return self._exit

    def _note_exit(self, code: Any) -> None:
        if code is not None and self._exit is None:
            self._exit = int(code)

    def is_running(self) -> bool:
        """True until the server exits (also while Ray is still placing it)."""
        return self.returncode is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (copied from its node first)."""
        self._copy_log()
        return log_tail(self._log_path, lines)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Stop the server (SIGTERM → wait → SIGKILL on its node), copy its log, end the actor. Idempotent."""
        if self._actor is None:
            return self._exit
        if self.placement is not None:  # not yet placed (or its start failed): no server to stop
            self._note_exit(self._call("stop", timeout_s, timeout_s=timeout_s + _CALL_TIMEOUT_S))
            self._copy_log()
            self._call("remove_log")
        self.kill_now()
        return self._exit

    def terminate(self) -> None:
        """Ask the actor to SIGTERM the server (no waiting; pair with :meth:`stop`)."""
        if self._actor is not None:
            with contextlib.suppress(Exception):
                self._actor.terminate.remote()

    def kill(self) -> None:
        """SIGKILL the server on its node (failure injection: the actor, its GPUs and port stay)."""
        if self._actor is not None:
            self._call("kill")
            self._poll_ref = None
            self._note_exit(self._call("poll"))

    def kill_now(self) -> None:
        """End the actor at once; its server gets SIGTERM from the kernel (PR_SET_PDEATHSIG)."""
        actor, self._actor = self._actor, None
        if actor is not None:
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)
        if self._exit is None:
            self._exit = LOST_EXIT_CODE

    def restart(self) -> None:
        """Start the server again in the same actor: same node, port and GPUs."""
        if self._actor is None or self.placement is None:
            raise ServerLaunchError(f"cannot restart {self.name}: it was stopped, not killed")
        pid = self._call("restart")
        if pid is None:
            raise ServerLaunchError(f"cannot restart {self.name}: its Ray actor is gone")
        self.placement = dataclasses.replace(self.placement, pid=int(pid))
        self._exit, self._poll_ref = None, None

    def _copy_log(self) -> None:
        if self.placement is not None and self.placement.machine_id == machine_id():
            return  # on the driver's machine the server writes to log_path itself
        data = self._call("read_log", _LOG_MAX_BYTES) if self._actor is not None else None
        if isinstance(data, bytes) and data:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_path.write_bytes(data)

    def _call(self, method: str, *args: Any, timeout_s: float = _CALL_TIMEOUT_S) -> Any:
        """Call an actor method and wait for it; None (and the exit marked lost) if the actor died."""
        if self._actor is None:
            return None
        return self._call_ref(getattr(self._actor, method).remote(*args), method, timeout_s)

    def _call_ref(self, ref: Any, method: str, timeout_s: float) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref, timeout=timeout_s)
        except exceptions.GetTimeoutError:
            logger.warning("%s: Ray actor call %s timed out after %.0fs", self.name, method, timeout_s)
        except (exceptions.RayActorError, exceptions.ActorUnavailableError) as exc:
            logger.warning("%s: its Ray actor died (%s)", self.name, _cause(exc))
            self._lost()
        except exceptions.RayTaskError as exc:
            raise ServerLaunchError(f"{self.name}: {method} failed on its Ray node: {_cause(exc)}") from exc
        except Exception as exc:  # e.g. Ray already shut down (interpreter exit): nothing left to manage
            logger.warning("%s: cannot reach its Ray actor (%s: %s)", self.name, type(exc).__name__, exc)
            self._lost()
        return None

    def _lost(self) -> None:
        self._actor = None
        if self._exit is None:
            self._exit = LOST_EXIT_CODE


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    return str(cause if isinstance(cause, BaseException) else exc).strip().splitlines()[-1]


class RayFleet:
    """The driver's side of ``placement='ray'``: one Ray connection and the actors it placed."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.connection = RayConnection(address)
        self._actor_class: Any = self.connection.ray.remote(ServerActor)
        self._run_token = uuid.uuid4().hex[:12]
        self._placed: list[tuple[dict[str, float], RayProcess]] = []

    def launch(self, server_id: str, config: ServerConfig, log_path: Path) -> RayProcess:
        """Create the actor for one server and ask it to start the server (returns at once; await
        :meth:`RayProcess.placed`)."""
        request = config.ray_request()
        self._check_capacity(server_id, request)
        options: dict[str, Any] = {
            "num_cpus": request["CPU"],
            "num_gpus": request["GPU"],
            "resources": {k: v for k, v in request.items() if k not in ("CPU", "GPU")},
            "max_restarts": 0,
            "scheduling_strategy": "SPREAD" if config.ray_spread else "DEFAULT",
        }
        actor = self._actor_class.options(**options).remote(
            server_id, self._run_token, str(log_path.absolute()), machine_id()
        )
        process = RayProcess(server_id, self.connection, actor, actor.start.remote(config), log_path)
        self._placed.append((request, process))
        return process

    def _check_capacity(self, server_id: str, request: dict[str, float]) -> None:
        nodes = self.connection.node_resources()
        fits = [_fits(node, request) for node in nodes]
        wanted = ", ".join(f"{k}={v:g}" for k, v in request.items() if v)
        if not any(fits):
            raise ServerLaunchError(
                f"{server_id}: no Ray node has {wanted} for one server ({len(nodes)} nodes); lower "
                "ray_num_gpus / tp_size / ray_num_cpus / ray_resources, or add nodes with those resources"
            )
        live = sum(1 for r, p in self._placed if r == request and p.is_running())
        if live + 1 > sum(fits):
            raise ServerLaunchError(
                f"{server_id}: the Ray cluster has room for {sum(fits)} servers with {wanted}, this would be "
                f"server {live + 1}; use fewer workers or add nodes"
            )

    def close(self) -> None:
        """Disconnect from Ray if we connected (any actor left is killed by Ray)."""
        self.connection.close()


def _fits(node: dict[str, float], request: dict[str, float]) -> int:
    """How many servers with ``request`` fit on a node with ``node`` total resources."""
    counts = [int(node.get(name, 0.0) // amount) for name, amount in request.items() if amount > 0]
    return min(counts) if counts else 1_000_000
