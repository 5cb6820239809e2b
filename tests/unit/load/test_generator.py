"""Workloads are seeded, exact and shaped as configured; dispatch keeps its schedule."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.errors import DatasetError
from sglang_test_framework.load.dispatch import dispatch
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.records import Request, RequestRecord
from sglang_test_framework.sim.tokenizer import SimpleTokenizer

TOK = SimpleTokenizer()


def test_same_seed_same_requests_and_exact_random_lengths() -> None:
    cfg = WorkloadConfig(
        dataset_name="random",
        num_prompts=50,
        random_input_len=300,
        random_output_len=40,
        random_range_ratio=0.5,
        request_rate=10,
    )
    a = RequestGenerator(7).generate_requests(cfg)
    b = RequestGenerator(7).generate_requests(cfg)
    assert [(r.prompt, r.output_len, r.arrival_offset_s) for r in a] == [
        (r.prompt, r.output_len, r.arrival_offset_s) for r in b
    ]
    assert all(TOK.count(r.prompt) == r.prompt_len for r in a)
    assert all(150 <= r.prompt_len <= 300 and 20 <= r.output_len <= 40 for r in a)
    assert RequestGenerator(8).generate_requests(cfg)[0].prompt != a[0].prompt


def test_poisson_rate() -> None:
    gen = RequestGenerator(1)
    arrivals = gen.generate_poisson_arrivals(rate=50, duration=200)
    assert abs(len(arrivals) / 200 - 50) < 2.5
    offsets = gen.arrival_offsets(5000, rate=20)
    assert abs(np.mean(np.diff(offsets)) - 0.05) < 0.003
    assert gen.arrival_offsets(3, rate=float("inf")) == [0.0, 0.0, 0.0]


def test_shared_prefix_groups_and_zipf_skew() -> None:
    cfg = WorkloadConfig(
        dataset_name="generated-shared-prefix",
        gsp_num_groups=4,
        gsp_prompts_per_group=5,
        gsp_system_prompt_len=50,
        gsp_question_len=10,
    )
    reqs = RequestGenerator().generate_requests(cfg)
    assert len(reqs) == 20
    by_group: dict[int, list[str]] = {}
    for r in reqs:
        assert r.prompt_len == 60
        by_group.setdefault(r.group_id or 0, []).append(r.prompt)
    for prompts in by_group.values():
        assert len({p.split()[:50] == prompts[0].split()[:50] for p in prompts}) == 1
    zipf = WorkloadConfig(
        dataset_name="generated-shared-prefix",
        gsp_group_distribution="zipf",
        gsp_num_groups=8,
        num_prompts=400,
        gsp_system_prompt_len=8,
        gsp_question_len=4,
    )
    groups = [r.group_id for r in RequestGenerator().generate_requests(zipf)]
    assert groups.count(0) > 3 * groups.count(7)


def test_multi_turn_is_a_closed_loop_chain_per_conversation() -> None:
    cfg = WorkloadConfig(dataset_name="multi-turn", multi_turn_num_conversations=3, multi_turn_turns=3, request_rate=5)
    reqs = RequestGenerator().generate_requests(cfg)
    conv = sorted((r for r in reqs if r.group_id == 0), key=lambda r: r.turn)
    assert [r.chain_id for r in conv] == [0, 0, 0] and [r.extends_previous for r in conv] == [False, True, True]
    assert [r.collect_output for r in conv] == [True, True, False] and [r.think_time_s for r in conv] == [0, 1, 1]
    for prev, nxt in itertools.pairwise(conv):
        assert nxt.arrival_offset_s > prev.arrival_offset_s  # only orders the chain: sent when prev finished
        assert len(nxt.messages) == 1 and nxt.prompt_len == cfg.multi_turn_user_len  # the new user part only


def test_sharegpt_sample_and_custom_errors(tmp_path: Path) -> None:
    reqs = RequestGenerator().generate_requests(WorkloadConfig(dataset_name="sharegpt", num_prompts=30))
    assert len(reqs) == 30 and all(r.prompt_len >= 2 for r in reqs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "ok", "output_len": 3}) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2"):
        RequestGenerator().generate_requests(WorkloadConfig(dataset_name="custom", dataset_path=bad))
    with pytest.raises(ValidationError, match="dataset_path"):
        WorkloadConfig(dataset_name="custom")


async def test_dispatch_keeps_schedule_and_concurrency_limit() -> None:
    reqs = [Request(f"r{i}", "a", 1, 1, arrival_offset_s=i * 0.01) for i in range(20)]
    active = peak = 0

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return RequestRecord(
            req.request_id, scheduled_ns=scheduled, arrival_ns=arrival, send_ns=time.monotonic_ns(), success=True
        )

    recs = await dispatch(reqs, send, max_concurrency=3)
    assert len(recs) == 20 and peak == 3
    by_id = {r.request_id: r for r in recs}
    start_ns = by_id["r0"].scheduled_ns
    for i in range(20):  # the schedule is start + offset exactly; a timer never fires early
        rec = by_id[f"r{i}"]
        assert rec.scheduled_ns == start_ns + i * 10_000_000
        assert rec.arrival_ns >= rec.scheduled_ns


async def test_cancellation_records_in_flight_requests() -> None:
    reqs = [Request(f"r{i}", "a", 1, 1) for i in range(5)]
    seen: list[RequestRecord] = []

    async def send(req: Request, scheduled: int, arrival: int) -> RequestRecord:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    task = asyncio.create_task(dispatch(reqs, send, on_record=seen.append))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) == 5 and all(r.error_type == "cancelled" for r in seen)
