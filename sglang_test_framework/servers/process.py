"""Child processes: own process group, log captured to a file, terminate → wait → kill.

This module (with the rest of ``servers/``) is the only code in the package that spawns processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol

from ..proc_util import die_with_parent
from ..redact import redact_argv

__all__ = ["ManagedProcess", "ProcessHandle", "log_tail"]

logger = logging.getLogger(__name__)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ProcessHandle(Protocol):
    """What the manager needs of a server's process: a local :class:`ManagedProcess`, or a process a Ray
    actor owns on another node (``servers/ray_backend.RayProcess``)."""

    @property
    def log_path(self) -> Path: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def returncode(self) -> int | None: ...
    def is_running(self) -> bool: ...
    def log_tail(self, lines: int = 40) -> str: ...
    def stop(self, timeout_s: float = 10.0) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def kill_now(self) -> None: ...


class ManagedProcess:
    """A child process in its own process group whose stdout+stderr go to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None
        self._sigterm_sent = False

    def start(self) -> None:
        """Spawn the process (argv list, never a shell)."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = self.log_path.open("ab")
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it from the main thread.
        in_main = threading.current_thread() is threading.main_thread()
        self._popen = subprocess.Popen(
            self.argv,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent if in_main else None,
        )
        logger.debug("started %s pid=%d: %s", self.name, self._popen.pid, " ".join(redact_argv(self.argv)))

    @property
    def pid(self) -> int | None:
        """OS process id (None before start)."""
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """Exit code if the process has exited, else None."""
        return self._popen.poll() if self._popen else None

    def is_running(self) -> bool:
        """True while the process has been started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of this process's log."""
        return log_tail(self.log_path, lines)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the whole process group, wait up to ``timeout_s``, then SIGKILL it. Idempotent."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            # One SIGTERM only: a second one can land after the child restored SIG_DFL on its way out and
            # kill it mid-exit (losing e.g. coverage data; uvicorn turns a second SIGTERM into a force exit).
            if not self._sigterm_sent:
                self._signal_group(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not exit %.0fs after SIGTERM; sending SIGKILL", self.name, timeout_s)
                self._signal_group(signal.SIGKILL)
                popen.wait(timeout=10)
        # Grandchildren (e.g. SGLang's scheduler processes) share the group: make sure none remain.
        self._signal_group(signal.SIGKILL)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        return popen.returncode

    def terminate(self) -> None:
        """Send SIGTERM to the process group without waiting (pair with :meth:`stop`)."""
        if self.is_running():
            self._sigterm_sent = True
            self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the process group immediately (used to simulate a crashed worker)."""
        self._signal_group(signal.SIGKILL)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=10)

    def kill_now(self) -> None:
        """SIGKILL the process group and return at once (no waiting: used when the user insists)."""
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)
