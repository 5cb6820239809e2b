"""dispatch() never loses a record and never waits forever, whatever the send function does."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sglang_test_framework.load.dispatch import DispatchStats, dispatch
from sglang_test_framework.records import Request, RequestRecord


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def requests(n: int) -> list[Request]:
    return [Request(f"r{i}", "a", 1, 2, group_id=i % 2, turn=i) for i in range(n)]


async def ok(req: Request, scheduled: int, arrival: int) -> RequestRecord:
    await asyncio.sleep(0)
    return RequestRecord(req.request_id, scheduled_ns=scheduled, arrival_ns=arrival, success=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("max_concurrency", [None, 2])
async def test_a_raising_send_function_gives_failed_client_records(max_concurrency: int | None) -> None:
    errors: list[BaseException] = [
        KeyError("meta_info"),
        TypeError("'str' object cannot be interpreted as an integer"),
        RecursionError("maximum recursion depth exceeded"),
        OverflowError("cannot convert float infinity to integer"),
        BrokenStr(),
    ]

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        i = int(req.request_id[1:])
        if i % 2:
            await asyncio.sleep(0)
            raise errors[i // 2 % len(errors)]
        return await ok(req, scheduled, arrival)

    seen: list[RequestRecord] = []
    stats = DispatchStats()
    recs = await dispatch(requests(20), send, max_concurrency=max_concurrency, on_record=seen.append, stats=stats)

    assert Counter(r.request_id for r in recs) == Counter(f"r{i}" for i in range(20))
    assert seen == recs
    failed = [r for r in recs if not r.success]
    assert sorted(int(r.request_id[1:]) for r in failed) == list(range(1, 20, 2))
    assert {r.error_type for r in failed} == {"client"}
    messages = {r.error for r in failed}
    assert "KeyError: 'meta_info'" in messages and "BrokenStr: (unprintable)" in messages
    assert any(m is not None and m.startswith("RecursionError: maximum recursion") for m in messages)
    for r in failed:
        req = requests(20)[int(r.request_id[1:])]
        assert (r.prompt_len, r.expected_output_len, r.group_id, r.turn) == (1, 2, req.group_id, req.turn)
        assert 0 < r.scheduled_ns <= r.arrival_ns <= r.send_ns <= (r.finish_ns or 0)
    assert (stats.arrived, stats.completed, stats.errors, stats.in_flight, stats.waiting) == (20, 20, 10, 0, 0)


@pytest.mark.timeout(60)
async def test_a_send_function_returning_something_else_is_a_client_failure() -> None:
    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        return None  # type: ignore[return-value]  # the broken send function under test

    recs = await dispatch(requests(3), send)
    assert len(recs) == 3 and all(r.error_type == "client" and "NoneType" in (r.error or "") for r in recs)


@pytest.mark.timeout(60)
async def test_a_task_cancelled_from_inside_is_recorded_and_the_run_goes_on() -> None:
    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        if req.request_id == "r1":
            raise asyncio.CancelledError  # e.g. a library cancelling its own call
        return await ok(req, scheduled, arrival)

    recs = await dispatch(requests(4), send)
    by_id = {r.request_id: r for r in recs}
    assert len(by_id) == 4 and by_id["r1"].error_type == "cancelled"
    assert all(by_id[f"r{i}"].success for i in (0, 2, 3))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("max_concurrency", [None, 1])
async def test_cancelling_the_run_records_in_flight_and_waiting_requests(max_concurrency: int | None) -> None:
    started = asyncio.Event()

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        if req.request_id == "r0":
            return await ok(req, scheduled, arrival)
        started.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    seen: list[RequestRecord] = []
    stats = DispatchStats()
    task = asyncio.create_task(
        dispatch(requests(4), send, max_concurrency=max_concurrency, on_record=seen.append, stats=stats)
    )
    await started.wait()
    assert stats.arrived == 4  # every offset is 0: all arrived before the first send ran
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(r.request_id for r in seen) == ["r0", "r1", "r2", "r3"]
    assert [r.request_id for r in seen if r.success] == ["r0"]
    assert {r.error_type for r in seen if not r.success} == {"cancelled"}
    assert all(r.send_ns == 0 for r in seen if not r.success)
    assert (stats.in_flight, stats.waiting) == (0, 0)


async def test_a_non_finite_arrival_offset_is_rejected_before_anything_is_sent() -> None:
    sent: list[str] = []

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        sent.append(req.request_id)
        return await ok(req, scheduled, arrival)

    bad = [*requests(2), Request("late", "a", 1, 1, arrival_offset_s=float("inf"))]
    with pytest.raises(ValueError, match="'late': arrival_offset_s is inf"):
        await dispatch(bad, send)
    assert sent == []


async def test_records_keep_the_absolute_schedule() -> None:
    reqs = [Request(f"r{i}", "a", 1, 1, arrival_offset_s=i * 0.001) for i in range(5)]
    recs = await dispatch(reqs, ok, start_ns=1_000)
    assert sorted(r.scheduled_ns for r in recs) == [1_000 + i * 1_000_000 for i in range(5)]
    assert all(r.arrival_ns >= r.scheduled_ns for r in recs)


@pytest.mark.timeout(60)
async def test_requests_still_running_after_the_drain_timeout_are_cancelled_and_recorded() -> None:
    never = asyncio.Event()

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        if req.request_id in ("r1", "r3"):
            await never.wait()  # an over-saturated server: these never finish
        return await ok(req, scheduled, arrival)

    seen: list[RequestRecord] = []
    recs = await dispatch(requests(5), send, on_record=seen.append, drain_timeout_s=0.05)
    assert sorted(r.request_id for r in recs) == [f"r{i}" for i in range(5)] and seen == recs
    cancelled = sorted(r.request_id for r in recs if not r.success)
    assert cancelled == ["r1", "r3"]
    assert all(r.error_type == "cancelled" and "drain_timeout_s" in str(r.error) for r in recs if not r.success)
