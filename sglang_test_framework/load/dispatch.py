"""Dispatch: open-loop requests are sent at ``start + offset`` (absolute deadlines, no chained sleeps);
closed-loop chains (``Request.chain_id``: a session's turns, a virtual user's requests) send each request
only after the previous one of the chain finished, plus its ``think_time_s``. Both optionally wait behind
a client-side concurrency limit.

A chain starts at the arrival offset of its first request (on the same absolute schedule as open-loop
requests) and runs as one task; the ``scheduled_ns`` of a later request is when it became eligible
(previous ``finish_ns`` + think time). A session turn that extends its predecessor is completed from the
previous record's answer just before it is sent (:mod:`.sessions`). A failed turn does not stop its
chain; a stopped chain (Ctrl-C, drain timeout) records its unsent requests as cancelled, with no
timestamps. A virtual user that leaves (``Request.user_windows`` on its first request) sends a request
that became eligible between its active spans at the next span's start, and records the requests left
when its last span ended as not sent (``records.NOT_SENT``, no timestamps, not counted in the stats).

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
from typing import Any

from ..records import NOT_SENT, Request, RequestRecord
from .sessions import continue_turn

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
        workload=req.workload,
        chain_id=req.chain_id,
    )


def _in_window(windows: tuple[tuple[float, float], ...] | None, start_ns: int, eligible_ns: int) -> int | None:
    """When a user with these active spans sends a request that became eligible at ``eligible_ns``:
    then, or the next span's start; None when its last span has ended (always then without spans)."""
    if windows is None:
        return eligible_ns
    for begin_s, end_s in windows:
        if eligible_ns < start_ns + end_s * 1e9:
            return max(eligible_ns, start_ns + int(begin_s * 1e9))
    return None


def _client_error(slot: _Slot, exc: BaseException) -> RequestRecord:
    try:
        text = str(exc)[:300]
    except Exception:  # a broken __str__ must not lose the record
        text = "(unprintable)"
    return _failed(slot, "client", f"{type(exc).__name__}: {text}", send_ns=slot.send_ns, finish_ns=time.monotonic_ns())


_Entry = tuple[int, Request, list[Request] | None]
"""``(deadline_ns, request, rest of its chain)``; rest is None for an open-loop request."""


def _schedule(requests: Sequence[Request], start_ns: int) -> list[_Entry]:
    """Open-loop requests and chain starts in arrival order, each chain start with the chain's later
    requests (in arrival-offset order). ValueError names a request whose offset or think time is bad."""
    chains: dict[int, list[Request]] = {}
    heads: list[tuple[Request, list[Request] | None]] = []
    for req in requests:
        if not math.isfinite(req.arrival_offset_s):
            raise ValueError(f"request {req.request_id!r}: arrival_offset_s is {req.arrival_offset_s}, not finite")
        if req.chain_id is None:
            heads.append((req, None))
        elif not (math.isfinite(req.think_time_s) and req.think_time_s >= 0):
            raise ValueError(f"request {req.request_id!r}: think_time_s is {req.think_time_s}, not finite and ≥ 0")
        else:
            chains.setdefault(req.chain_id, []).append(req)
    for chain in chains.values():
        chain.sort(key=lambda r: r.arrival_offset_s)
        heads.append((chain[0], chain[1:]))
    heads.sort(key=lambda h: h[0].arrival_offset_s)
    return [(start_ns + int(req.arrival_offset_s * 1e9), req, rest) for req, rest in heads]


@dataclass(slots=True)
class _Run:
    """Shared state of one dispatch: why unfinished requests are cancelled, and the last arrival (or chain
    eligibility) time the drain timeout counts from."""

    cancel_reason: str = "cancelled before completion"
    last_activity_ns: int = 0


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
    """Send every request at its scheduled time (chained ones when their predecessor finished, module
    docstring); return one record per request, in completion order.

    Each record also goes to ``on_record`` as the request finishes; with ``keep_records=False`` the
    returned list stays empty, so a long run holds no record (chunk timestamps included) in memory here.
    With ``drain_timeout_s``, requests still unfinished that long after the last arrival (or, for a
    chain, the last time its next request became eligible) are cancelled and recorded with
    ``error_type='cancelled'`` (an over-saturated load never drains); so are a stopped chain's unsent
    requests.

    An exception from ``send`` becomes a failed record (``error_type='client'``). On cancellation
    (Ctrl-C) dispatch stops, in-flight and unsent chained requests are recorded with
    ``error_type='cancelled'`` (passed to ``on_record`` too), and CancelledError is re-raised.

    Raises:
        ValueError: If a request's ``arrival_offset_s`` (or a chained one's ``think_time_s``) is not
            finite (before anything is sent).
    """
    stats = stats or DispatchStats()
    start = start_ns if start_ns is not None else time.monotonic_ns()
    schedule = _schedule(requests, start)
    sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    records: list[RequestRecord] = []
    pending: dict[asyncio.Task[Any], _Slot | None] = {}  # None: a chain task, which records its own requests
    run = _Run(last_activity_ns=start)

    def emit(record: RequestRecord) -> None:
        if keep_records:
            records.append(record)
        if record.error_type != NOT_SENT:
            stats.completed += 1
            stats.errors += 0 if record.success else 1
        if on_record is not None:
            on_record(record)

    def settle(task: asyncio.Task[Any]) -> None:
        """Record a finished task once (done callback; also called after each wait, so never missed)."""
        if task not in pending:
            return
        slot = pending.pop(task)
        if slot is None:
            return
        if task.cancelled():  # arrived but not finished: keep it, marked cancelled
            record = _failed(slot, "cancelled", run.cancel_reason)
        elif (exc := task.exception()) is not None:  # only BaseExceptions other than Exception get here
            record = _client_error(slot, exc)
        else:
            record = task.result()
        emit(record)

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

    async def chained_one(slot: _Slot) -> RequestRecord:
        """``one``, where a cancellation from inside the send (not of the chain) fails only this request."""
        try:
            record = await one(slot)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            record = _failed(slot, "cancelled", "cancelled before completion")
        record.chain_id = slot.request.chain_id
        return record

    async def chain(slot: _Slot | None, rest: list[Request]) -> None:
        """Send a chain's requests one after another; on any exit, record what was not recorded."""
        sent = 0
        windows = slot.request.user_windows if slot is not None else None
        try:
            while slot is not None:
                record = await chained_one(slot)
                previous, slot = slot.request, None
                emit(record)
                if sent == len(rest):
                    return
                due_ns = (record.finish_ns or time.monotonic_ns()) + int(rest[sent].think_time_s * 1e9)
                eligible_ns = _in_window(windows, start, due_ns)
                if eligible_ns is None:  # the user left for good: the rest is not sent
                    for req in rest[sent:]:
                        emit(_failed(_Slot(req, 0, 0), NOT_SENT, "not sent: its virtual user left"))
                    sent = len(rest)
                    return
                run.last_activity_ns = max(run.last_activity_ns, eligible_ns)
                await _sleep_until(eligible_ns)
                stats.arrived += 1
                slot = _Slot(continue_turn(previous, record, rest[sent]), eligible_ns, time.monotonic_ns())
                sent += 1
        finally:
            if slot is not None:
                emit(_failed(slot, "cancelled", run.cancel_reason, finish_ns=time.monotonic_ns()))
            for req in rest[sent:]:
                emit(_failed(_Slot(req, 0, 0), "cancelled", f"not sent: its chain stopped ({run.cancel_reason})"))

    try:
        for scheduled, req, rest in schedule:
            await _sleep_until(scheduled)
            stats.arrived += 1
            slot = _Slot(req, scheduled, time.monotonic_ns())
            run.last_activity_ns = max(run.last_activity_ns, slot.arrival_ns)
            task: asyncio.Task[Any] = asyncio.create_task(one(slot) if rest is None else chain(slot, rest))
            pending[task] = slot if rest is None else None
            task.add_done_callback(settle)
        drain_ns = int(drain_timeout_s * 1e9) if drain_timeout_s is not None else None
        while pending:
            timeout_s = None if drain_ns is None else (run.last_activity_ns + drain_ns - time.monotonic_ns()) / 1e9
            if timeout_s is not None and timeout_s <= 0:
                run.cancel_reason = (
                    f"cancelled: unfinished {drain_timeout_s:g} s after the last arrival (drain_timeout_s)"
                )
                raise _DrainTimeout
            done, _ = await asyncio.wait(list(pending), timeout=timeout_s)
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
    pending: dict[asyncio.Task[Any], _Slot | None], settle: Callable[[asyncio.Task[Any]], None]
) -> None:
    in_flight = list(pending)
    for task in in_flight:
        task.cancel()
    await asyncio.gather(*in_flight, return_exceptions=True)
    for task in in_flight:
        settle(task)
