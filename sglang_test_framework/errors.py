"""Exception hierarchy: every error the framework raises derives from :class:`FrameworkError`."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "FrameworkError",
    "RouterError",
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
