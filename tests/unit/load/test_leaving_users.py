"""Virtual users that leave: their active spans from the user schedule, their shares of the requests,
and the dispatcher sending only within a user's spans (the rest recorded as not sent, left out of every
metric)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import pytest

from sglang_test_framework.config.stages import LoadStage, parse_stages, segments, user_windows
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.chains import user_owners, users_leave
from sglang_test_framework.load.dispatch import DispatchStats, dispatch
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.load.shards import partition_requests
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import NOT_SENT, Request, RequestRecord

TINY = {"random_input_len": 4, "random_output_len": 4}


def windows(stages: str, user: int) -> list[tuple[float, float]]:
    return user_windows(segments([LoadStage(**s) for s in parse_stages(stages)]), user)


def test_a_user_is_active_where_the_schedule_reaches_it() -> None:
    burst = "burst:1/3:1s/2s:6s"
    assert windows(burst, 0) == [(0.0, math.inf)]  # the base user never leaves
    assert windows(burst, 2) == [(0.0, 1.0), (3.0, 4.0)]  # on phases only; off at the end
    assert windows("ramp:4-0:4s", 1) == [(0.0, 2.0)]  # leaves where the ramp falls below 2 users
    assert windows("step:4-1/4:8s", 3) == [(0.0, 2.0)]
    assert windows("zigzag:0/4:4s:4s", 1) == [(1.0, 3.0)]
    assert windows("constant:2:1s,constant:1:1s,constant:2:1s", 1) == [(0.0, 1.0), (2.0, math.inf)]


def test_users_share_the_requests_by_active_time_evenly_interleaved() -> None:
    owners = user_owners([4.0, 2.0, 2.0, 0.0], 10)
    assert Counter(owners) == {0: 5, 1: 3, 2: 2}  # 5, 2.5, 2.5 → the tie's extra goes to user 1
    assert owners[:4] == [0, 1, 2, 0]  # each user's requests are spread over the list
    assert user_owners([1.0, 1.0], 4) == [0, 1, 0, 1]


def test_generated_users_carry_their_spans_on_their_first_request() -> None:
    config = WorkloadConfig(virtual_users=3, num_prompts=12, stages="burst:1/3:1s/1s:4s", **TINY)
    assert users_leave(config)
    requests = RequestGenerator().generate_requests(config)
    by_user = Counter(r.chain_id for r in requests)
    assert by_user == {0: 6, 1: 3, 2: 3}  # active 4 s, 2 s, 2 s
    heads = {r.chain_id: r for r in sorted(requests, key=lambda r: r.arrival_offset_s)[::-1]}
    assert heads[0].user_windows == ((0.0, math.inf),)
    assert heads[2].user_windows == ((0.0, 1.0), (2.0, 3.0))
    assert sum(r.user_windows is not None for r in requests) == 3
    again = RequestGenerator().generate_requests(config)
    assert [(r.request_id, r.chain_id) for r in again] == [(r.request_id, r.chain_id) for r in requests]
    growing = WorkloadConfig(virtual_users=3, num_prompts=12, stages="ramp:1-3:2s", **TINY)
    assert not users_leave(growing)
    assert all(r.user_windows is None for r in RequestGenerator().generate_requests(growing))


async def _send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
    send_ns = time.monotonic_ns()
    await asyncio.sleep(0.05)
    return RequestRecord(
        req.request_id,
        scheduled_ns=scheduled,
        arrival_ns=arrival,
        send_ns=send_ns,
        finish_ns=time.monotonic_ns(),
        success=True,
        output_tokens=1,
        first_token_ns=send_ns + 1,
    )


@pytest.mark.timeout(60)
async def test_a_user_sends_only_within_its_spans_and_the_rest_is_not_sent() -> None:
    spans = ((0.0, 0.3), (0.6, 0.9))
    user = [
        Request(f"u-{k}", "x", 1, 1, arrival_offset_s=k * 1e-6, chain_id=0, user_windows=spans if k == 0 else None)
        for k in range(40)
    ]
    start_ns = time.monotonic_ns()
    stats = DispatchStats()
    records = await dispatch(user, _send, start_ns=start_ns, stats=stats)
    sent = [r for r in records if r.error_type != NOT_SENT]
    not_sent = [r for r in records if r.error_type == NOT_SENT]
    assert len(records) == 40 and sent and not_sent
    assert stats.completed == len(sent) and stats.errors == 0
    assert [r.request_id for r in sent] == [f"u-{k}" for k in range(len(sent))]  # in order, the rest unsent
    for r in sent:  # each sent inside a span (the user waits out the gap)
        at_s = (r.send_ns - start_ns) / 1e9
        assert any(a <= at_s < b + 0.05 for a, b in spans), at_s
    assert any((r.send_ns - start_ns) / 1e9 >= 0.6 for r in sent)  # it came back after the gap
    assert all(r.send_ns == 0 and r.finish_ns is None for r in not_sent)
    summary = summarize(RequestColumns.from_records(records))
    assert summary["total_requests"] == len(sent) and summary["not_sent"] == len(not_sent)
    assert summary["success_rate"] == 1.0 and summary["failed"] == 0


def test_a_multi_process_client_keeps_each_user_whole_with_its_spans_first() -> None:
    config = WorkloadConfig(virtual_users=5, num_prompts=40, stages="zigzag:1/5:2s:4s,constant:0:1s", **TINY)
    requests = RequestGenerator().generate_requests(config)
    shards = partition_requests(requests, 3)
    assert sorted(r.request_id for shard in shards for r in shard) == sorted(r.request_id for r in requests)
    for shard in shards:
        firsts: dict[int | None, Request] = {}
        for req in shard:
            firsts.setdefault(req.chain_id, req)
        assert all(first.user_windows is not None for first in firsts.values())
    owners = [{r.chain_id for r in shard} for shard in shards]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])  # no user split
