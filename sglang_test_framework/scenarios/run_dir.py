"""A run's results directory: claimed at the start, never shared with an earlier run, always readable.

At the start: a directory that holds an earlier run is renamed aside (``<dir>.<its start time>``,
never truncated or mixed with new files), then ``config.yaml``, ``versions.json`` and ``run.json``
(``status: running``) are written. At the end ``run.json`` becomes ``completed``, ``interrupted`` or
``failed`` with the end time, the record count and any server that exited during the run. A run
killed with SIGKILL therefore leaves its config, a ``running`` status and every record already written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..fileio import write_json_atomic, write_yaml_atomic
from ..redact import redact_argv

__all__ = ["RUN_FILES", "RunDirectory", "RunStatus", "set_aside", "versions"]

logger = logging.getLogger(__name__)

RunStatus = Literal["running", "completed", "interrupted", "failed"]

RUN_FILES = ("run.json", "requests.jsonl", "summary.json", "config.yaml")
"""Any of these marks a directory as holding a run."""


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages that shape the measurement."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("sglang-test-framework", "sglang-router", "smg", "sglang", "aiohttp", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).astimezone()


def _holds_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def _started_at(path: Path) -> str:
    """The earlier run's start time (from its run.json, else the directory's mtime), filename-safe."""
    try:
        started = json.loads((path / "run.json").read_text(encoding="utf-8"))["started_at"]
        stamp = dt.datetime.fromisoformat(str(started))
    except (OSError, ValueError, KeyError, TypeError):
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    return stamp.strftime("%Y%m%d-%H%M%S")


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<path>.<start time>[-k]`` (a free name) and return the new path."""
    base = path.with_name(f"{path.name}.{_started_at(path)}")
    target, k = base, 1
    while target.exists():
        target = base.with_name(f"{base.name}-{k}")
        k += 1
    path.rename(target)
    return target


@dataclass
class RunDirectory:
    """The results directory of one run (see the module docstring)."""

    path: Path
    kind: str
    status: RunStatus = "running"
    started_at: str = ""
    previous_run: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def claim(cls, path: Path, kind: str, config: dict[str, Any]) -> RunDirectory:
        """Prepare ``path`` for a new run of ``kind`` whose (redacted) config is ``config``."""
        resolved, cwd = path.resolve(), Path.cwd().resolve()
        if (resolved == cwd or resolved in cwd.parents or resolved == Path.home()) and _holds_run(resolved):
            raise ConfigError(
                f"output_dir {path}: holds an earlier run and is the working/home directory, so it cannot be "
                "set aside; pass a dedicated directory, e.g. --output-dir results/my_run"
            )
        run = cls(path=path, kind=kind, started_at=_now().isoformat(timespec="milliseconds"))
        if _holds_run(path):
            run.previous_run = set_aside(path)
            logger.info("%s held an earlier run: moved it to %s", path, run.previous_run)
        path.mkdir(parents=True, exist_ok=True)
        write_yaml_atomic(path / "config.yaml", config)
        write_json_atomic(path / "versions.json", versions())
        run.write()
        return run

    def write(self, **extra: Any) -> Path:
        """(Re)write ``run.json`` with the current status plus ``extra`` keys."""
        self.extra.update(extra)
        data = {
            "kind": self.kind,
            "status": self.status,
            "started_at": self.started_at,
            "pid": os.getpid(),
            "argv": redact_argv(sys.argv),
            **({"previous_run_moved_to": str(self.previous_run)} if self.previous_run else {}),
            **self.extra,
        }
        return write_json_atomic(self.path / "run.json", data)

    def finish(self, status: RunStatus, **extra: Any) -> Path:
        """Mark the run ``completed`` / ``interrupted`` / ``failed`` with its end time."""
        self.status = status
        return self.write(ended_at=_now().isoformat(timespec="milliseconds"), **extra)
