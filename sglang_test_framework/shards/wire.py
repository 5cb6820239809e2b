"""Messages between the driver and a local worker process, and their framing on a pipe.

Each frame is a 4-byte big-endian length and a pickle. Pickle is safe here because both ends are this
package in processes of the same user on one machine (the driver spawned the worker); it keeps a record's
integer-nanosecond timestamps and lists exact, and costs a few microseconds per record.

Driver → worker (its stdin): a :class:`~.runner.ShardSpec`, then :class:`Start` or :class:`Stop`; later
:class:`Stop` (or end of file: the driver is gone) stops the load.
Worker → driver (its stdout): :class:`Ready` once its sender is open, :class:`Records` as requests finish
(batched per event-loop turn) and :class:`Counters` every :data:`HEARTBEAT_S`, then :class:`Done`
(or :class:`Failed` and :class:`Done`).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass

from ..records import ClientProcessStats, RequestRecord

__all__ = [
    "HEARTBEAT_S",
    "Counters",
    "Done",
    "Failed",
    "Ready",
    "Records",
    "Start",
    "Stop",
    "encode",
    "read_message",
]

HEARTBEAT_S = 0.25
"""How often a worker reports its live counters when no record finished meanwhile."""

_HEADER = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Start:
    """Send the shard's requests at ``start_ns + arrival_offset_s`` (``time.monotonic_ns()`` clock)."""

    start_ns: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the load: in-flight requests are cancelled and recorded as such."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker's sender is open; it waits for :class:`Start`."""

    pid: int


@dataclass(frozen=True, slots=True)
class Counters:
    """A worker's live dispatch counters."""

    arrived: int = 0
    waiting: int = 0
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class Records:
    """Records of requests that finished, with the counters after them."""

    records: list[RequestRecord]
    counters: Counters


@dataclass(frozen=True, slots=True)
class Failed:
    """The shard's load raised (not a request failure: those are records)."""

    error: str


@dataclass(frozen=True, slots=True)
class Done:
    """The last message: the worker's CPU and wall time over the load (None if it never started)."""

    stats: ClientProcessStats | None


def encode(message: object) -> bytes:
    """One frame: length + pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> object | None:
    """The next message, or None at end of file (also after a torn last frame: the writer died)."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    message: object = pickle.loads(payload)  # our own child process: see the module docstring
    return message
