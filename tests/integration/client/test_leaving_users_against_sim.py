"""Virtual users that leave, against the simulator: the server's in-flight count follows the user
schedule (4 users, then 1, then 4 again, then none), each user sends only while it is active, and the
request counts are exact (sent + not sent = num_prompts; every sent request reached the server)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.dispatch import dispatch
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import NOT_SENT, Request, RequestRecord

STAGES = "constant:4:1s,constant:1:1s,constant:4:1s,constant:0:0.5s"


def peak_in_flight(rows: list[dict[str, Any]], start_ns: int, from_s: float, to_s: float) -> int:
    """Most requests the server held at once within ``[from_s, to_s)`` after ``start_ns``."""
    lo, hi = start_ns + int(from_s * 1e9), start_ns + int(to_s * 1e9)
    events: list[tuple[int, int]] = []
    for row in rows:
        arrival_ns, finish_ns = int(row["arrival_ns"]), int(row["finish_ns"])
        if arrival_ns < hi and finish_ns > lo:
            events += [(max(arrival_ns, lo), 1), (finish_ns, -1)]
    peak = now = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.timeout(120)
async def test_in_flight_follows_the_user_schedule_with_exact_counts(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    config = WorkloadConfig(virtual_users=4, num_prompts=2000, stages=STAGES, random_input_len=16, random_output_len=8)
    requests = RequestGenerator(seed=3).generate_requests(config)
    windows = {r.chain_id: r.user_windows for r in requests if r.user_windows is not None}
    assert windows == {
        0: ((0.0, 3.0),),
        1: ((0.0, 1.0), (2.0, 3.0)),
        2: ((0.0, 1.0), (2.0, 3.0)),
        3: ((0.0, 1.0), (2.0, 3.0)),
    }
    start_ns = time.monotonic_ns() + 50_000_000
    async with RequestSender(model="m", idle_timeout_s=30.0) as sender:

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(request, sim.url + "/generate", "sglang", True, scheduled_ns, arrival_ns)

        records = await dispatch(requests, send, start_ns=start_ns)

    sent = [r for r in records if r.error_type != NOT_SENT]
    not_sent = [r for r in records if r.error_type == NOT_SENT]
    assert len(records) == 2000 and len(sent) + len(not_sent) == 2000
    assert sent and not_sent and all(r.success for r in sent), [r.error for r in sent if not r.success][:3]
    assert Counter(r.chain_id for r in records) == Counter(r.chain_id for r in requests)  # each user's share
    truth = sim.truth_rows(len(sent))
    assert {str(row["rid"]) for row in truth} == {r.request_id for r in sent}  # exactly the sent ones
    for r in sent:  # each became due while its user was active
        at_s = (r.scheduled_ns - start_ns) / 1e9
        assert any(a <= at_s < b for a, b in windows[r.chain_id]), (r.chain_id, at_s)
    high = peak_in_flight(truth, start_ns, 0.2, 1.0)
    low = peak_in_flight(truth, start_ns, 1.5, 2.0)  # after the leaving users' last requests finished
    again = peak_in_flight(truth, start_ns, 2.2, 3.0)
    assert low == 1 and high > low and again > low, (high, low, again)
    assert peak_in_flight(truth, start_ns, 3.5, 10.0) == 0  # everyone left at 3 s
    summary = summarize(RequestColumns.from_records(records))
    assert summary["total_requests"] == len(sent) and summary["not_sent"] == len(not_sent)
    assert summary["success_rate"] == 1.0
