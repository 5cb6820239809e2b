"""Writing result files so that a reader never sees half a file: write a temporary sibling, fsync it,
then rename it over the target (atomic on POSIX)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import DatasetError

__all__ = ["jsonl_values", "write_json_atomic", "write_text_atomic", "write_yaml_atomic"]


def write_text_atomic(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (parents created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def write_json_atomic(path: Path, data: Any, *, one_line: bool = False) -> Path:
    """JSON (indented, or one line with ``one_line``) written atomically; non-JSON values as ``str``."""
    text = json.dumps(data, default=str) if one_line else json.dumps(data, default=str, indent=2)
    return write_text_atomic(path, text + "\n")


def write_yaml_atomic(path: Path, data: Any) -> Path:
    """YAML (keys in insertion order) written atomically."""
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def jsonl_values(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, value)`` for each non-blank line of JSONL ``text`` read from ``path``; ``where`` is
    ``path:line``.

    Raises:
        DatasetError: A line that is not JSON, naming the file and line.
    """
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc}); write one JSON object per line") from None
        yield where, value
