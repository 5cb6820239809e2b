"""The optional Ray dependency: importing it with an error that names the extra, and one connection to a
cluster per user (servers placed on Ray and client shards on Ray share it; whoever connected disconnects).

Ray is imported only inside these functions, so the package works without it (``pip install
'sglang-test-framework[ray]'`` adds it).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from types import ModuleType

from .config.server_config import RAY_EXTRA_HINT
from .errors import ConfigError, ServerLaunchError

__all__ = ["RayConnection", "import_ray", "machine_id"]

logger = logging.getLogger(__name__)

RAY_NAMESPACE = "sglang_test"
"""Ray namespace of every actor we create (``ray list actors`` shows them under it)."""


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed (the message says how to install the extra).
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"placement='ray' / client_nodes need Ray, which is not installed: {RAY_EXTRA_HINT}") from exc
    return ray


def machine_id() -> str:
    """An id of this machine's current boot: two processes with the same id share pids and
    CLOCK_MONOTONIC (``/proc/sys/kernel/random/boot_id``; '' where it cannot be read)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class RayConnection:
    """This process's connection to a Ray cluster.

    Connects with ``ray.init(address)`` unless Ray is already initialized in this process (then it
    reuses that connection and :meth:`close` leaves it open). ``address=None`` follows Ray's own rule:
    ``$RAY_ADDRESS`` if set, else a new single-node Ray on this machine. Actors created through it are
    owned by this process: Ray kills them when it disconnects or dies.

    Construct it off the event loop's thread (``asyncio.to_thread``): connecting takes seconds, and
    from a worker thread Ray leaves this process's signal handlers alone (from the main thread it would
    replace our SIGTERM handler).
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.ray = import_ray()
        self._owns = not self.ray.is_initialized()
        if not self._owns:
            return
        if address is not None:
            _check_reachable(address)
        logging.getLogger("ray._private.worker").addFilter(_quiet_signal_warning)
        try:
            self.ray.init(address=address, namespace=RAY_NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "Ray ($RAY_ADDRESS or a new local instance)"
            raise ServerLaunchError(
                f"could not connect to {where}: {exc}; start a cluster (`ray start --head`) or fix ray_address"
            ) from exc
        logger.info("connected to Ray at %s", address or "a local instance")

    def node_resources(self) -> list[dict[str, float]]:
        """Total resources of every live node of the cluster."""
        return [dict(node["Resources"]) for node in self.ray.nodes() if node.get("Alive")]

    def close(self) -> None:
        """Disconnect if this object connected (Ray then kills the actors we still own). Idempotent."""
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns = False


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at a ``host:port`` address (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # 'auto', ray://… : Ray resolves those itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except OSError as exc:
        raise ServerLaunchError(
            f"no Ray cluster answers at {address} ({exc}); start one (`ray start --head --port {port}`) or fix "
            "ray_address / client_ray_address"
        ) from exc


def _quiet_signal_warning(record: logging.LogRecord) -> bool:
    """Drop Ray's warning that it set no SIGTERM handler off the main thread: that is what we want."""
    return "SIGTERM handler is not set" not in record.getMessage()
