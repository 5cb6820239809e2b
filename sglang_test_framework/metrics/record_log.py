"""The run's records on disk: ``requests.jsonl`` written one flushed line per record, read back lazily.

:class:`RecordLog` is a ``Sequence[RequestRecord]`` over the file: ``len``, iteration, indexing and
slicing read the file again (through an index of one byte offset per :data:`CHECKPOINT_EVERY` records),
so a long run keeps no record in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import weakref
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, overload

from ..records import RequestRecord

__all__ = ["CHECKPOINT_EVERY", "RecordLog", "parse_record_line"]

CHECKPOINT_EVERY = 1024


def parse_record_line(line: bytes) -> RequestRecord | None:
    """The record of one JSONL line, or None if the line is not a JSON object with a ``request_id``
    (for example the torn last line of a run that crashed while writing)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "request_id" not in data:
        return None
    return RequestRecord.from_dict(data)


def _default(value: object) -> str:
    """JSON fallback for values of unexpected types: their text, so that every record can be written."""
    return str(value)


@dataclass
class _Handle:
    """The open writer and the file; shared with the finalizer, which must not hold the log itself."""

    path: Path
    temporary: bool
    writer: IO[bytes] | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _finalize(handle: _Handle) -> None:
    handle.close()
    if handle.temporary:
        with contextlib.suppress(OSError):
            handle.path.unlink()


class RecordLog(Sequence[RequestRecord]):
    """Records appended as JSON lines to ``path`` (a private temporary file, deleted with the log, when
    ``path`` is None). A new log truncates ``path``; :meth:`open_existing` reads an existing one.

    Every record is written and flushed by :meth:`append`, so a crash or Ctrl-C loses nothing already
    added. Reading sees the records added before the read started.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            fd, name = tempfile.mkstemp(prefix="sglang-records-", suffix=".jsonl")
            os.close(fd)
            handle = _Handle(Path(name), temporary=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = _Handle(path, temporary=False)
        handle.writer = handle.path.open("wb")
        self._start(handle)

    def _start(self, handle: _Handle) -> None:
        self._handle = handle
        weakref.finalize(self, _finalize, handle)
        self._count = 0
        self._size = 0
        self._checkpoints = array("q")
        self._needs_newline = False
        self._encoder = json.JSONEncoder(default=_default)
        self.skipped_lines = 0
        """Lines of an existing file that held no record (:meth:`open_existing`)."""

    @classmethod
    def open_existing(cls, path: Path) -> tuple[RecordLog, Iterator[RequestRecord]]:
        """A log over the records already in ``path`` (not truncated; later appends go to its end), and
        an iterator over those records that indexes the file as it goes: exhaust it before using the log.
        Lines that hold no record are skipped and counted in :attr:`skipped_lines`."""
        log = cls.__new__(cls)
        log._start(_Handle(path, temporary=False))
        return log, log._index_existing()

    def _index_existing(self) -> Iterator[RequestRecord]:
        with self._handle.path.open("rb") as fh:
            offset = 0
            for line in fh:
                record = parse_record_line(line)
                if record is None:
                    self.skipped_lines += 1
                else:
                    if self._count % CHECKPOINT_EVERY == 0:
                        self._checkpoints.append(offset)
                    self._count += 1
                    yield record
                offset += len(line)
                self._needs_newline = not line.endswith(b"\n")
            self._size = offset

    @property
    def path(self) -> Path:
        """The JSONL file."""
        return self._handle.path

    def append(self, record: RequestRecord) -> None:
        """Write ``record`` as one line and flush it. A failed write is undone (the file keeps only whole
        lines) and its ``OSError`` raised."""
        line = (self._encode(record) + "\n").encode()
        if self._needs_newline:  # an existing file ended in a torn line
            line = b"\n" + line
        writer = self._handle.writer
        if writer is None:  # appended after close(): reopen at the end
            writer = self._handle.writer = self._handle.path.open("ab")
        try:
            writer.write(line)
            writer.flush()
        except OSError:  # e.g. disk full: cut the partial line, so that the file keeps whole lines only
            self._handle.writer = None
            with contextlib.suppress(OSError):
                writer.close()
            with contextlib.suppress(OSError):
                os.truncate(self._handle.path, self._size)
            raise
        start = self._size + (1 if self._needs_newline else 0)
        if self._count % CHECKPOINT_EVERY == 0:
            self._checkpoints.append(start)
        self._count += 1
        self._size += len(line)
        self._needs_newline = False

    def _encode(self, record: RequestRecord) -> str:
        try:
            return self._encoder.encode(record.to_dict())
        except (TypeError, ValueError) as exc:  # e.g. a self-referencing list: keep the line count right
            stub = {"request_id": str(record.request_id), "error": f"record not serialisable: {exc}"}
            return self._encoder.encode(stub)

    def close(self) -> None:
        """Close the file (a later :meth:`append` reopens it; reading never needs it open)."""
        self._handle.close()

    # ----------------------------------------------------------------------- Sequence
    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[RequestRecord]:
        return self._read(0, self._count)

    @overload
    def __getitem__(self, index: int) -> RequestRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestRecord]: ...

    def __getitem__(self, index: int | slice) -> RequestRecord | list[RequestRecord]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                return list(self)[index]
            return list(self._read(start, stop))
        i = index + self._count if index < 0 else index
        if not 0 <= i < self._count:
            raise IndexError(f"record index {index} out of range for {self._count} records")
        return next(self._read(i, i + 1))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordLog({str(self.path)!r}, {self._count} records)"

    def _read(self, start: int, stop: int) -> Iterator[RequestRecord]:
        if start >= stop:
            return
        first = start // CHECKPOINT_EVERY
        index = first * CHECKPOINT_EVERY
        with self._handle.path.open("rb") as fh:
            fh.seek(self._checkpoints[first])
            for line in fh:
                record = parse_record_line(line)
                if record is None:
                    continue
                if index >= start:
                    yield record
                index += 1
                if index >= stop:
                    return
