"""The run's records on disk: ``requests.jsonl``, one line per record, read back lazily.

Inside an event loop the lines are written in batches: an appended line reaches the file (the OS page
cache: it survives the process being killed) at most :data:`FLUSH_INTERVAL_S` later, or at once when
:data:`FLUSH_BYTES` are waiting, at :meth:`RecordLog.close`, before any read and at interpreter exit.
Outside a loop every append is written at once. So a crash or SIGKILL loses at most the records of the
last :data:`FLUSH_INTERVAL_S`; Ctrl-C and SIGTERM lose nothing (the scenario closes the log).

:class:`RecordLog` is a ``Sequence[RequestRecord]`` over the file: ``len``, iteration, indexing and
slicing read the file again (through an index of one byte offset per :data:`CHECKPOINT_EVERY` records),
so a long run keeps no record in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import weakref
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, overload

import orjson

from ..records import RequestRecord

__all__ = ["CHECKPOINT_EVERY", "FLUSH_BYTES", "FLUSH_INTERVAL_S", "RecordLog", "parse_record_line"]

CHECKPOINT_EVERY = 1024
FLUSH_INTERVAL_S = 0.1
"""Inside an event loop, an appended record is written to the file at most this long after: one write
per batch instead of one write and flush per record (with orjson encoding, ~15 → ~6 µs CPU per record
measured in isolation; docs/client-precision.md)."""
FLUSH_BYTES = 1 << 16
"""Waiting lines are written at once when they reach this many bytes."""

logger = logging.getLogger(__name__)


def parse_record_line(line: bytes) -> RequestRecord | None:
    """The record of one JSONL line, or None if the line is not a JSON object with a ``request_id``
    (for example the torn last line of a run that crashed while writing)."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(line)  # what orjson refuses (NaN, integers beyond 64 bits)
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
    pending: list[bytes] = field(default_factory=list)
    """Lines appended but not written yet (in order)."""
    pending_bytes: int = 0

    def write_pending(self) -> None:
        """Write the waiting lines in one write and flush; OSError (nothing is dropped: they stay)."""
        if not self.pending:
            return
        data = b"".join(self.pending)
        writer = self.writer
        if writer is None:  # appended after close(): reopen at the end
            writer = self.writer = self.path.open("ab")
        size = writer.tell()
        try:
            writer.write(data)
            writer.flush()
        except OSError:  # e.g. disk full: cut the partial write, so that the file keeps whole lines only
            self.writer = None
            with contextlib.suppress(OSError):
                writer.close()
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            raise
        self.pending.clear()
        self.pending_bytes = 0

    def close(self) -> None:
        try:
            self.write_pending()
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None


def _finalize(handle: _Handle) -> None:
    with contextlib.suppress(OSError):
        handle.close()
    if handle.temporary:
        with contextlib.suppress(OSError):
            handle.path.unlink()


class RecordLog(Sequence[RequestRecord]):
    """Records appended as JSON lines to ``path`` (a private temporary file, deleted with the log, when
    ``path`` is None). A new log truncates ``path``; :meth:`open_existing` reads an existing one.

    Inside an event loop :meth:`append` batches the lines (module docstring: at most
    :data:`FLUSH_INTERVAL_S` later, at close and before any read); outside one it writes each at once.
    Reading sees the records added before the read started.
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
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
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
        """Add ``record`` as one line: written at once outside an event loop, else batched (module
        docstring). A failed write cuts any partial line (the file keeps only whole lines) and raises
        ``OSError``; when this append's own write fails, the record is not added."""
        line = self._encode(record)
        if self._needs_newline:  # an existing file ended in a torn line
            line = b"\n" + line
        before = (self._count, self._size, self._needs_newline, len(self._checkpoints))
        if self._count % CHECKPOINT_EVERY == 0:
            self._checkpoints.append(self._size + (1 if self._needs_newline else 0))
        self._count += 1
        self._size += len(line)
        self._needs_newline = False
        handle = self._handle
        handle.pending.append(line)
        handle.pending_bytes += len(line)
        if handle.pending_bytes < FLUSH_BYTES and self._defer_write():
            return
        try:
            handle.write_pending()
        except OSError:
            handle.pending.pop()
            handle.pending_bytes -= len(line)
            self._count, self._size, self._needs_newline, checkpoints = before
            del self._checkpoints[checkpoints:]
            raise

    def _defer_write(self) -> bool:
        """Arrange a write of the waiting lines within FLUSH_INTERVAL_S on the running event loop (one
        timer per batch); False outside a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._timer is None or self._timer_loop is not loop or self._timer.cancelled():
            self._timer = loop.call_later(FLUSH_INTERVAL_S, self._timed_write)
            self._timer_loop = loop
        return True

    def _timed_write(self) -> None:
        self._timer = None
        try:
            self._handle.write_pending()
        except OSError as exc:  # the lines stay waiting: the next append, read or close tries again
            logger.error("writing %s failed (%s); the records are kept and written later", self.path, exc)

    def flush(self) -> None:
        """Write the waiting lines now (OSError if that fails; they stay waiting)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._handle.write_pending()

    def _encode(self, record: RequestRecord) -> bytes:
        data = record.to_dict()
        try:
            return orjson.dumps(data, default=_default, option=orjson.OPT_APPEND_NEWLINE)
        except (orjson.JSONEncodeError, TypeError):  # non-string keys, integers beyond 64 bits: json's way
            pass
        try:
            return (self._encoder.encode(data) + "\n").encode()
        except (TypeError, ValueError) as exc:  # e.g. a self-referencing list: keep the line count right
            stub = {"request_id": str(record.request_id), "error": f"record not serialisable: {exc}"}
            return (self._encoder.encode(stub) + "\n").encode()

    def close(self) -> None:
        """Write the waiting lines and close the file (a later :meth:`append` reopens it; reading never
        needs it open)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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
        self.flush()
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
