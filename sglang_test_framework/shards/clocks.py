"""Putting a remote shard's records on the driver's timeline (pure: no I/O, no clock reads).

Every record's timestamps are ``time.monotonic_ns()`` of the process that measured it. On one machine
all processes share CLOCK_MONOTONIC, so nothing needs aligning. A shard on another host has its own
clock: the driver pings it several times (driver time before, shard time, driver time after) and keeps
the ping with the shortest round trip; the shard's clock minus the driver's is then
``shard_ns − (before + after) / 2``, exact within ± half that round trip (the shard read its clock
somewhere inside it). The driver sends the shard its start time on the shard's clock and shifts the
shard's records back by the offset. Per-request metrics (TTFT, ITL, latency) are differences of two
timestamps of the same record, taken by the same process, so the shift cancels: they never mix clocks.
Only cross-shard quantities (arrival times on the common timeline, throughput over time) carry the
uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import RequestRecord

__all__ = ["ClockAlignment", "ClockSample", "align_clocks", "shift_record"]


@dataclass(frozen=True)
class ClockSample:
    """One ping: the driver's clock before and after, and the shard's monotonic and wall clocks read
    in between."""

    sent_ns: int
    remote_monotonic_ns: int
    remote_wall_ns: int
    received_ns: int

    @property
    def rtt_ns(self) -> int:
        """The ping's round trip on the driver's clock."""
        return self.received_ns - self.sent_ns


@dataclass(frozen=True)
class ClockAlignment:
    """How a shard's CLOCK_MONOTONIC relates to the driver's."""

    offset_ns: int
    """The shard's clock minus the driver's (driver time = shard time − offset)."""
    uncertainty_ns: int
    """The offset is exact within ± this (half the best round trip; 0 on the driver's machine)."""
    rtt_ns: int
    """The best (shortest) round trip of the pings."""
    remote_wall_minus_monotonic_ns: int
    """The shard's ``time.time_ns() − time.monotonic_ns()`` (maps its records to wall-clock time)."""
    same_machine: bool
    """The shard runs on the driver's machine (same boot): the clocks are the same clock."""
    samples: int

    def to_driver_ns(self, remote_ns: int) -> int:
        """A shard timestamp on the driver's clock."""
        return remote_ns - self.offset_ns

    def to_remote_ns(self, driver_ns: int) -> int:
        """A driver timestamp on the shard's clock."""
        return driver_ns + self.offset_ns

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def align_clocks(samples: Sequence[ClockSample], same_machine: bool) -> ClockAlignment:
    """The alignment from the ping with the shortest round trip (offset 0 on the driver's machine).

    Raises:
        ValueError: No samples, or a sample whose round trip is negative.
    """
    if not samples:
        raise ValueError("align_clocks needs at least one ping")
    if any(s.rtt_ns < 0 for s in samples):
        raise ValueError("a ping's reply came back before it was sent: the driver's samples are not monotonic")
    best = min(samples, key=lambda s: s.rtt_ns)
    wall_offset = best.remote_wall_ns - best.remote_monotonic_ns
    if same_machine:
        return ClockAlignment(0, 0, best.rtt_ns, wall_offset, True, len(samples))
    midpoint_x2 = best.sent_ns + best.received_ns
    offset = (2 * best.remote_monotonic_ns - midpoint_x2) // 2
    return ClockAlignment(offset, (best.rtt_ns + 1) // 2, best.rtt_ns, wall_offset, False, len(samples))


def shift_record(record: RequestRecord, offset_ns: int) -> RequestRecord:
    """Move every timestamp of ``record`` by ``−offset_ns`` (in place; returns it). 0 (unset) stays 0."""
    if offset_ns == 0:
        return record
    for name in ("scheduled_ns", "arrival_ns", "send_ns"):
        value = getattr(record, name)
        if value:
            setattr(record, name, value - offset_ns)
    if record.first_token_ns is not None:
        record.first_token_ns -= offset_ns
    if record.finish_ns is not None:
        record.finish_ns -= offset_ns
    record.chunk_ns = [t - offset_ns for t in record.chunk_ns]
    return record
