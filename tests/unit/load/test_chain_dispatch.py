"""Closed-loop chains in dispatch(): each chained request only after its predecessor finished plus its
think time, session turns built from the real answer, one record per request whatever happens."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from sglang_test_framework.load.dispatch import DispatchStats, dispatch
from sglang_test_framework.load.sessions import continue_turn
from sglang_test_framework.records import Request, RequestRecord


def chain(chain_id: int, n: int, *, think_s: float = 0.0, start_s: float = 0.0) -> list[Request]:
    return [
        Request(
            f"c{chain_id}-{k}",
            f"user{k}",
            1,
            2,
            arrival_offset_s=start_s + k * 1e-6,
            chain_id=chain_id,
            think_time_s=think_s if k else 0.0,
            turn=k,
            extends_previous=k > 0,
            collect_output=True,
        )
        for k in range(n)
    ]


class Server:
    """A fake send function: answers "answer-<id>" after ``delay_s``; keeps what it was sent."""

    def __init__(self, delay_s: float = 0.01, fail: set[str] | None = None) -> None:
        self.delay_s = delay_s
        self.fail = fail or set()
        self.sent: dict[str, Request] = {}

    async def __call__(self, req: Request, scheduled: int, arrival: int) -> RequestRecord:
        self.sent[req.request_id] = req
        send_ns = time.monotonic_ns()
        await asyncio.sleep(self.delay_s)
        ok = req.request_id not in self.fail
        return RequestRecord(
            req.request_id,
            prompt_len=req.prompt_len,
            scheduled_ns=scheduled,
            arrival_ns=arrival,
            send_ns=send_ns,
            finish_ns=time.monotonic_ns(),
            success=ok,
            error=None if ok else "boom",
            error_type=None if ok else "http",
            output_text=f"answer-{req.request_id}" if ok else None,
            output_tokens=1 if ok else 0,
        )


@pytest.mark.timeout(60)
async def test_each_chained_request_waits_for_its_predecessor_plus_think_time() -> None:
    server = Server(delay_s=0.02)
    think_s = 0.03
    requests = chain(0, 4, think_s=think_s) + chain(1, 3, think_s=think_s, start_s=0.01)
    open_loop = [Request(f"o{i}", "x", 1, 2, arrival_offset_s=0.005 * i) for i in range(5)]
    stats = DispatchStats()
    records = await dispatch(requests + open_loop, server, stats=stats)

    assert Counter(r.request_id for r in records) == Counter(r.request_id for r in requests + open_loop)
    by_id = {r.request_id: r for r in records}
    for c, n in ((0, 4), (1, 3)):
        for k in range(1, n):
            prev, cur = by_id[f"c{c}-{k - 1}"], by_id[f"c{c}-{k}"]
            assert prev.finish_ns is not None
            assert cur.scheduled_ns == prev.finish_ns + int(think_s * 1e9)  # eligible = finish + think
            assert cur.arrival_ns >= cur.scheduled_ns and cur.send_ns >= prev.finish_ns + int(think_s * 1e9)
            assert cur.chain_id == c
    assert all(by_id[f"o{i}"].chain_id is None for i in range(5))
    assert (stats.arrived, stats.completed, stats.errors, stats.in_flight) == (12, 12, 0, 0)


@pytest.mark.timeout(60)
async def test_a_turn_extends_the_previous_prompt_with_the_real_answer_and_survives_a_failure() -> None:
    server = Server(fail={"c0-1"})
    records = await dispatch(chain(0, 3), server)
    assert len(records) == 3 and [r.success for r in sorted(records, key=lambda r: r.request_id)] == [True, False, True]
    assert server.sent["c0-1"].prompt == "user0 answer-c0-0 user1"
    assert server.sent["c0-1"].prompt_len == 1 + 1 + 1
    assert server.sent["c0-2"].prompt == "user0 answer-c0-0 user1 user2"  # the failed turn answered nothing
    assert all(not r.extends_previous for r in server.sent.values())


def test_continue_turn_builds_chat_history_and_token_ids() -> None:
    first = Request("a", "hi there", 2, 4, messages=[{"role": "user", "content": "hi there"}], prompt_token_ids=[1, 2])
    turn = Request(
        "b", "more", 1, 4, messages=[{"role": "user", "content": "more"}], prompt_token_ids=[9], extends_previous=True
    )
    answer = RequestRecord("a", output_text="ok fine", output_ids=[5, 6], output_tokens=2, success=True)
    nxt = continue_turn(first, answer, turn)
    assert nxt.messages == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "ok fine"},
        {"role": "user", "content": "more"},
    ]
    assert nxt.prompt_token_ids == [1, 2, 5, 6, 9] and nxt.prompt_len == 5 and nxt.prompt == "hi there ok fine more"
    assert continue_turn(first, answer, first) is first  # not a session turn: unchanged


@pytest.mark.timeout(60)
async def test_cancelling_mid_chain_records_the_in_flight_and_the_unsent_turns() -> None:
    server = Server(delay_s=0.2)
    seen: list[RequestRecord] = []
    task = asyncio.create_task(dispatch(chain(0, 4) + chain(1, 2), server, on_record=seen.append))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(r.request_id for r in seen) == ["c0-0", "c0-1", "c0-2", "c0-3", "c1-0", "c1-1"]
    assert all(r.error_type == "cancelled" for r in seen)
    unsent = [r for r in seen if r.request_id in ("c0-1", "c0-2", "c0-3", "c1-1")]
    assert all((r.error or "").startswith("not sent") and r.arrival_ns == 0 for r in unsent)


@pytest.mark.timeout(60)
async def test_drain_timeout_counts_from_the_last_chained_arrival() -> None:
    server = Server(delay_s=0.02)
    # 6 turns of 20 ms run well past a 50 ms drain timeout counted from the chain's start, yet all finish
    records = await dispatch(chain(0, 6), server, drain_timeout_s=0.05)
    assert len(records) == 6 and all(r.success for r in records)
    stuck = Server(delay_s=30.0)
    records = await dispatch(chain(0, 3), stuck, drain_timeout_s=0.05)
    assert len(records) == 3 and {r.error_type for r in records} == {"cancelled"}


async def test_a_bad_think_time_is_rejected_before_anything_is_sent() -> None:
    bad = chain(0, 2)
    bad[1].think_time_s = float("nan")
    server = Server()
    with pytest.raises(ValueError, match="think_time_s"):
        await dispatch(bad, server)
    assert server.sent == {}
