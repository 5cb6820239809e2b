"""Exception hierarchy: every error the framework raises derives from :class:`FrameworkError`."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "FrameworkError",
    "RouterError",
    "RunError",
    "RunInterrupted",
    "ServerLaunchError",
    "ServerNotReadyError",
]


class FrameworkError(Exception):
    """Root of all sglang_test_framework errors."""


class ConfigError(FrameworkError):
    """A configuration value is invalid; the message names the field and the fix."""


class DatasetError(FrameworkError):
    """A dataset file is missing or malformed; the message names the file and the fix."""


class ServerLaunchError(FrameworkError):
    """A server or router process failed to start; the message carries its log tail."""


class ServerNotReadyError(ServerLaunchError):
    """A launched process did not become ready before its startup timeout."""


class RouterError(FrameworkError):
    """The router failed to start, register its workers, or route a request."""


class RunError(FrameworkError):
    """A run could not go on (e.g. every warmup request failed); the message says why and what to check."""


class RunInterrupted(FrameworkError):
    """A run was stopped by SIGINT or SIGTERM. Everything measured until then is on disk, the partial
    summary is marked ``interrupted``, and every process we started was stopped.

    Attributes:
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
        results: The partial results (a ``RunResults``) when the scenario could compute them, else None.
    """

    def __init__(self, signal_name: str, results: object | None = None) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name
        self.results = results

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 143 if self.signal_name == "SIGTERM" else 130
