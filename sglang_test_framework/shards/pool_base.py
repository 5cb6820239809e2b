"""What both shard pools share (local worker processes, :mod:`.pool`; Ray actors, :mod:`.ray_pool`).

:class:`ShardPoolBase` is the async context manager and the run: start every member at one time, pump
each member's records to ``on_record`` until it ends, stop them all on a cancellation; ``stats`` is the
sum of the members' live counters. A member that died leaves its unfinished requests as records made by
:func:`failed_record` (see :meth:`ShardPoolBase._left_over`).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Self, TypeVar

from ..load.dispatch import DispatchStats
from ..records import ClientProcessStats, Request, RequestRecord
from .runner import ShardSpec
from .wire import Counters

__all__ = ["ShardMember", "ShardPoolBase", "counting", "failed_record"]


@dataclass(kw_only=True)
class ShardMember:
    """The driver's view of one shard: its requests with no record yet, its latest counters, its CPU
    and wall time once it reported them, whether it finished and how it failed."""

    spec: ShardSpec
    outstanding: dict[str, Request] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    stats: ClientProcessStats | None = None
    done: bool = False
    error: str | None = None

    @property
    def name(self) -> str:
        """The shard as log lines and failed records name it."""
        return f"client shard {self.spec.index}"


M = TypeVar("M", bound=ShardMember)


def failed_record(spec: ShardSpec, request: Request, scheduled_ns: int, error_type: str, error: str) -> RequestRecord:
    """The record of a request a shard left unfinished (``error_type`` ``client`` or ``cancelled``)."""
    return RequestRecord(
        request_id=request.request_id,
        api_type=spec.sender.api_type,
        url=spec.sender.url,
        prompt_len=request.prompt_len,
        expected_output_len=request.output_len,
        scheduled_ns=scheduled_ns,
        error=error,
        error_type=error_type,
        group_id=request.group_id,
        turn=request.turn,
        workload=request.workload,
        chain_id=request.chain_id,
    )


def counting(on_record: Callable[[RequestRecord], None], stats: DispatchStats) -> Callable[[RequestRecord], None]:
    """``on_record`` that first counts the record in ``stats`` (completed, errors)."""

    def deliver(record: RequestRecord) -> None:
        stats.completed += 1
        stats.errors += 0 if record.success else 1
        on_record(record)

    return deliver


class ShardPoolBase(ABC, Generic[M]):
    """One member per :class:`ShardSpec`; subclasses start, pump, stop and close their kind of member."""

    def __init__(self) -> None:
        self._members: list[M] = []
        self._stopping_ns: int | None = None

    @property
    def process_stats(self) -> list[ClientProcessStats]:
        """CPU and wall time of each member over the load (those that reported them), in shard order."""
        return [m.stats for m in self._members if m.stats is not None]

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def start(self) -> None:
        """Start every member and wait until each is ready."""

    @abstractmethod
    async def close(self) -> None:
        """End every member still running."""

    @abstractmethod
    async def _send_start(self, start_ns: int) -> None:
        """Tell every member to start its schedule at ``start_ns`` (driver clock)."""

    @abstractmethod
    async def _pump(
        self, member: M, start_ns: int, on_record: Callable[[RequestRecord], None], stats: DispatchStats
    ) -> None:
        """Deliver the member's records until it ends; then account for what it left."""

    @abstractmethod
    async def _stop(self, pumps: list[asyncio.Task[None]]) -> None:
        """Tell every member to stop and collect what they send back."""

    async def run(self, start_ns: int, on_record: Callable[[RequestRecord], None], stats: DispatchStats) -> None:
        """Start every member's schedule at ``start_ns`` and deliver each record to ``on_record`` (also the
        failed records of a member that died); each member's CPU and wall time over the load are then in
        :attr:`process_stats` (also after a cancellation).

        ``stats`` is kept current: arrived / waiting / in flight summed over the members' latest
        counters, completed / errors counted from the records delivered.
        """
        await self._send_start(start_ns)
        pumps = [asyncio.create_task(self._pump(m, start_ns, on_record, stats)) for m in self._members]
        try:
            await asyncio.wait(pumps)  # unlike gather, a cancellation here leaves the pumps running
        except asyncio.CancelledError:
            await self._stop(pumps)
            raise
        for pump in pumps:
            pump.result()  # a bug in the pump must not pass silently

    def _sum_counters(self, stats: DispatchStats) -> None:
        stats.arrived = sum(m.counters.arrived for m in self._members)
        stats.waiting = sum(m.counters.waiting for m in self._members)
        stats.in_flight = sum(m.counters.in_flight for m in self._members)

    def _left_over(self, member: M, start_ns: int, how: str, failed: str) -> list[RequestRecord]:
        """Records for the requests a member that died (or failed) left without one.

        After a stop only the requests already due are recorded, as cancelled (``member.name`` ``how``
        while stopping); otherwise every one becomes a failed ``client`` record (``failed`` before this
        request finished).
        """
        records = []
        for request in sorted(member.outstanding.values(), key=lambda r: r.arrival_offset_s):
            scheduled_ns = start_ns + int(request.arrival_offset_s * 1e9)
            if self._stopping_ns is not None:
                if scheduled_ns > self._stopping_ns:
                    continue
                error_type, error = "cancelled", f"cancelled before completion ({member.name} {how} while stopping)"
            else:
                error_type, error = "client", f"{failed} before this request finished"
            records.append(failed_record(member.spec, request, scheduled_ns, error_type, error))
        member.outstanding.clear()
        return records
