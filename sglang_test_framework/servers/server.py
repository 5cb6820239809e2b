"""Handles for launched (or attached) servers and routers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config.router_config import RouterConfig
from ..config.server_config import ServerConfig
from .process import ManagedProcess, ProcessHandle

__all__ = ["ProcessExit", "RouterHandle", "SGLangServer"]


@dataclass(frozen=True)
class ProcessExit:
    """A server or router that exited while it should have been running."""

    name: str
    exit_code: int
    log_tail: str

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form (for run.json and the summary)."""
        return {"name": self.name, "exit_code": self.exit_code, "log_tail": self.log_tail}


@dataclass
class SGLangServer:
    """A running SGLang (or simulated) server, or an external one we attached to."""

    server_id: str
    config: ServerConfig
    base_url: str
    process: ProcessHandle | None = None
    startup_s: float = 0.0
    server_info: dict[str, object] = field(default_factory=dict)
    killed_on_purpose: bool = False
    """Set by failure injection (``ServerManager.kill_server``): its exit is expected, not a crash."""

    @property
    def pid(self) -> int | None:
        """OS pid of the server process (None for external servers)."""
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path | None:
        """Where the server's stdout/stderr is captured (None for external servers)."""
        return self.process.log_path if self.process else None

    @property
    def metrics_url(self) -> str:
        """The server's Prometheus endpoint."""
        return f"{self.base_url}/metrics"

    def is_alive(self) -> bool:
        """True if the process is running (external servers are assumed alive)."""
        return self.process is None or self.process.is_running()


@dataclass
class RouterHandle:
    """A running router: the real sglang-router process, or our in-process Python proxy."""

    router_id: str
    config: RouterConfig
    policy: str
    base_url: str
    worker_urls: list[str]
    process: ManagedProcess | None = None
    metrics_url: str | None = None
    startup_s: float = 0.0

    @property
    def pid(self) -> int | None:
        """OS pid of the router process (None for the in-process proxy)."""
        return self.process.pid if self.process else None
