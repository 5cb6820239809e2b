"""Open-loop dispatch: each request is sent at ``start + offset`` (absolute deadlines, no chained
sleeps), optionally behind a client-side concurrency limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..records import Request, RequestRecord

__all__ = ["DispatchStats", "SendFn", "dispatch"]

SendFn = Callable[[Request, int, int], Awaitable[RequestRecord]]


@dataclass
class DispatchStats:
    """Live client-side counters (sampled by the metrics collector)."""

    arrived: int = 0
    waiting: int = 0
    in_flight: int = 0
    completed: int = 0
    errors: int = 0


async def _sleep_until(deadline_ns: int) -> None:
    remaining = (deadline_ns - time.monotonic_ns()) / 1e9
    if remaining > 0:
        await asyncio.sleep(remaining)


async def dispatch(
    requests: Sequence[Request],
    send: SendFn,
    *,
    max_concurrency: int | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
    start_ns: int | None = None,
    stats: DispatchStats | None = None,
) -> list[RequestRecord]:
    """Send every request at its scheduled time; return records in completion order.

    On cancellation (Ctrl-C) dispatch stops, in-flight requests are cancelled and recorded with
    ``error_type='cancelled'`` (passed to ``on_record`` too), and CancelledError is re-raised.
    """
    stats = stats or DispatchStats()
    start = start_ns if start_ns is not None else time.monotonic_ns()
    sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    records: list[RequestRecord] = []
    pending: dict[asyncio.Task[RequestRecord], tuple[Request, int, int]] = {}

    def finish(record: RequestRecord) -> None:
        records.append(record)
        stats.completed += 1
        stats.errors += 0 if record.success else 1
        if on_record is not None:
            on_record(record)

    def done(task: asyncio.Task[RequestRecord]) -> None:
        if not task.cancelled() and task.exception() is None:
            pending.pop(task, None)
            finish(task.result())

    async def one(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
        if sem is not None:
            stats.waiting += 1
            try:
                await sem.acquire()
            finally:
                stats.waiting -= 1
        stats.in_flight += 1
        try:
            return await send(request, scheduled_ns, arrival_ns)
        finally:
            stats.in_flight -= 1
            if sem is not None:
                sem.release()

    try:
        for req in sorted(requests, key=lambda r: r.arrival_offset_s):
            scheduled = start + int(req.arrival_offset_s * 1e9)
            await _sleep_until(scheduled)
            arrival = time.monotonic_ns()
            stats.arrived += 1
            task = asyncio.create_task(one(req, scheduled, arrival))
            pending[task] = (req, scheduled, arrival)
            task.add_done_callback(done)
        while pending:
            await asyncio.wait(list(pending))
    except asyncio.CancelledError:
        in_flight = dict(pending)
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        for task, (req, scheduled, arrival) in in_flight.items():
            if task.cancelled():  # arrived but not finished: keep it, marked cancelled
                finish(
                    RequestRecord(
                        request_id=req.request_id,
                        prompt_len=req.prompt_len,
                        expected_output_len=req.output_len,
                        scheduled_ns=scheduled,
                        arrival_ns=arrival,
                        error="cancelled before completion",
                        error_type="cancelled",
                        group_id=req.group_id,
                        turn=req.turn,
                    )
                )
        raise
    return records
