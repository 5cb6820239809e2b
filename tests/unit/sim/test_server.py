"""SimServer's step loop on the real clock, driven in-process (no sockets): stamps are ordered."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from sglang_test_framework.sim.args import parse_config
from sglang_test_framework.sim.engine import SimRequest
from sglang_test_framework.sim.server import Flow, SimServer


def arrive_late(sim: SimServer, i: int) -> Flow:
    """Block the event loop past the end of the running decode step (steps take < 1 ms here), so the step
    loop wakes late, then arrive: the next step is modelled to start before this arrival."""
    time.sleep(0.002)
    prompt = list(range(1000 + 50 * i, 1040 + 50 * i))
    return sim.submit(SimRequest(f"late{i}", prompt, 2, arrival_ns=time.monotonic_ns()))


async def test_requests_arriving_while_the_loop_runs_late_are_admitted_after_they_arrive(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    argv = ["--model-path", "m", "--sim-slowdown", "0.1", "--sim-jitter-cv", "0", "--sim-ground-truth-log", str(truth)]
    sim = SimServer(parse_config(argv, {}))
    loop_task = asyncio.create_task(sim.step_loop())
    try:
        sim.submit(SimRequest("decoding", list(range(100)), 5000, arrival_ns=time.monotonic_ns()))
        await asyncio.sleep(0.01)
        flows: list[Flow] = []
        for i in range(10):
            flows.append(arrive_late(sim, i))
            await asyncio.sleep(0.003)
        for flow in flows:
            while not flow.req.finished:
                await flow.event.wait()
                flow.event.clear()
    finally:
        loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
    for flow in flows:
        sim.finish_flow(flow)
    sim.close()
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [r["rid"] for r in rows] == [f"late{i}" for i in range(10)]
    for row in rows:
        assert row["arrival_ns"] <= row["admitted_ns"] < row["prefill_chunks"][0]["end_ns"], row
        assert row["prefill_chunks"][-1]["end_ns"] <= row["first_token_step_end_ns"] <= row["finish_ns"], row
    assert sim.metrics.queue.n == 10 and sim.metrics.queue.total >= 0
