"""Open-loop dispatch: each request is sent at ``start + offset`` (absolute deadlines, no chained
sleeps), optionally behind a client-side concurrency limit.

The dispatcher never loses a request and never waits on a finished task: every task leaves ``pending``
when it finishes, and a send function that raises (it should not; RequestSender never does) yields a
failed record with ``error_type='client'``.
"""

from __future__ import annotations

import asyncio
import math
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


@dataclass(slots=True)
class _Slot:
    """One arrived request: what the dispatcher knows of it, for the record it builds if the send fails."""

    request: Request
    scheduled_ns: int
    arrival_ns: int
    send_ns: int = 0  # when it was handed to the send function (after any concurrency wait)


SPIN_NS = 1_000_000
"""The last stretch before a deadline is waited by yielding to the event loop instead of a timer: epoll
rounds timer waits up to whole milliseconds, which alone put ~0.6 ms of lag on every arrival."""


async def _sleep_until(deadline_ns: int) -> None:
    """Return at ``deadline_ns`` (never early): a timer to 1 ms before it, then yield until it passes
    (other tasks, e.g. streams being read, keep running meanwhile)."""
    remaining_ns = deadline_ns - time.monotonic_ns()
    if remaining_ns > SPIN_NS:
        await asyncio.sleep((remaining_ns - SPIN_NS) / 1e9)
    while time.monotonic_ns() < deadline_ns:  # noqa: ASYNC110 - a deliberate busy yield, see SPIN_NS
        await asyncio.sleep(0)


def _failed(
    slot: _Slot, error_type: str, error: str, *, send_ns: int = 0, finish_ns: int | None = None
) -> RequestRecord:
    req = slot.request
    return RequestRecord(
        request_id=req.request_id,
        prompt_len=req.prompt_len,
        expected_output_len=req.output_len,
        scheduled_ns=slot.scheduled_ns,
        arrival_ns=slot.arrival_ns,
        send_ns=send_ns,
        finish_ns=finish_ns,
        error=error,
        error_type=error_type,
        group_id=req.group_id,
        turn=req.turn,
    )


def _client_error(slot: _Slot, exc: BaseException) -> RequestRecord:
    try:
        text = str(exc)[:300]
    except Exception:  # a broken __str__ must not lose the record
        text = "(unprintable)"
    return _failed(slot, "client", f"{type(exc).__name__}: {text}", send_ns=slot.send_ns, finish_ns=time.monotonic_ns())


def _schedule(requests: Sequence[Request], start_ns: int) -> list[tuple[int, Request]]:
    """``(deadline_ns, request)`` in arrival order; ValueError names a request whose offset is not finite."""
    for req in requests:
        if not math.isfinite(req.arrival_offset_s):
            raise ValueError(f"request {req.request_id!r}: arrival_offset_s is {req.arrival_offset_s}, not finite")
    ordered = sorted(requests, key=lambda r: r.arrival_offset_s)
    return [(start_ns + int(req.arrival_offset_s * 1e9), req) for req in ordered]


async def dispatch(
    requests: Sequence[Request],
    send: SendFn,
    *,
    max_concurrency: int | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
    start_ns: int | None = None,
    stats: DispatchStats | None = None,
    keep_records: bool = True,
    drain_timeout_s: float | None = None,
) -> list[RequestRecord]:
    """Send every request at its scheduled time; return one record per request, in completion order.

    Each record also goes to ``on_record`` as the request finishes; with ``keep_records=False`` the
    returned list stays empty, so a long run holds no record (chunk timestamps included) in memory here.
    With ``drain_timeout_s``, requests still unfinished that long after the last one arrived are
    cancelled and recorded with ``error_type='cancelled'`` (an over-saturated load never drains).

    An exception from ``send`` becomes a failed record (``error_type='client'``). On cancellation
    (Ctrl-C) dispatch stops, in-flight requests are cancelled and recorded with
    ``error_type='cancelled'`` (passed to ``on_record`` too), and CancelledError is re-raised.

    Raises:
        ValueError: If a request's ``arrival_offset_s`` is not finite (before anything is sent).
    """
    stats = stats or DispatchStats()
    start = start_ns if start_ns is not None else time.monotonic_ns()
    schedule = _schedule(requests, start)
    sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    records: list[RequestRecord] = []
    pending: dict[asyncio.Task[RequestRecord], _Slot] = {}

    cancel_reason = "cancelled before completion"

    def settle(task: asyncio.Task[RequestRecord]) -> None:
        """Record a finished task once (done callback; also called after each wait, so never missed)."""
        slot = pending.pop(task, None)
        if slot is None:
            return
        if task.cancelled():  # arrived but not finished: keep it, marked cancelled
            record = _failed(slot, "cancelled", cancel_reason)
        elif (exc := task.exception()) is not None:  # only BaseExceptions other than Exception get here
            record = _client_error(slot, exc)
        else:
            record = task.result()
        if keep_records:
            records.append(record)
        stats.completed += 1
        stats.errors += 0 if record.success else 1
        if on_record is not None:
            on_record(record)

    async def one(slot: _Slot) -> RequestRecord:
        if sem is not None:
            stats.waiting += 1
            try:
                await sem.acquire()
            finally:
                stats.waiting -= 1
        stats.in_flight += 1
        try:
            slot.send_ns = time.monotonic_ns()
            record = await send(slot.request, slot.scheduled_ns, slot.arrival_ns)
            if not isinstance(record, RequestRecord):
                raise TypeError(f"the send function returned {type(record).__name__}, not a RequestRecord")
            return record
        except Exception as exc:  # CancelledError is not an Exception: it propagates
            return _client_error(slot, exc)
        finally:
            stats.in_flight -= 1
            if sem is not None:
                sem.release()

    try:
        for scheduled, req in schedule:
            await _sleep_until(scheduled)
            stats.arrived += 1
            slot = _Slot(req, scheduled, time.monotonic_ns())
            task = asyncio.create_task(one(slot))
            pending[task] = slot
            task.add_done_callback(settle)
        drain_deadline = time.monotonic() + drain_timeout_s if drain_timeout_s is not None else math.inf
        while pending:
            remaining = drain_deadline - time.monotonic()
            if remaining <= 0:
                cancel_reason = f"cancelled: unfinished {drain_timeout_s:g} s after the last arrival (drain_timeout_s)"
                raise _DrainTimeout
            done, _ = await asyncio.wait(list(pending), timeout=None if math.isinf(remaining) else remaining)
            for task in done:
                settle(task)
    except _DrainTimeout:  # the drain took too long: cancel what is left, recorded as cancelled
        await _cancel_all(pending, settle)
        return records
    except (asyncio.CancelledError, Exception):  # cancelled (or broken): never leave a task unrecorded
        await _cancel_all(pending, settle)
        raise
    return records


class _DrainTimeout(Exception):
    """The requests still running when ``drain_timeout_s`` ran out."""


async def _cancel_all(
    pending: dict[asyncio.Task[RequestRecord], _Slot], settle: Callable[[asyncio.Task[RequestRecord]], None]
) -> None:
    in_flight = list(pending)
    for task in in_flight:
        task.cancel()
    await asyncio.gather(*in_flight, return_exceptions=True)
    for task in in_flight:
        settle(task)
