"""Trace replay against the simulator: closed-loop sessions of a generic trace, checked with the sim's
ground-truth log, and the true request count in the config dump and the node / routing reports."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.scenarios.node import NodeTest
from sglang_test_framework.scenarios.routing import RoutingTest
from sglang_test_framework.traces import read_trace

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "traces" / "session_sample.jsonl"
ROWS = (4, 28)  # a window that cuts sessions: 24 requests
TRACE: dict[str, Any] = dict(
    model_path="meta-llama/Meta-Llama-3-8B-Instruct",
    backend="sim",
    dataset_name="trace",
    dataset_path=SAMPLE,
    trace_block_size=64,
    trace_rows=list(ROWS),
    trace_speedup=10.0,
    warmup_requests=0,
    progress=False,
    write_plots=False,
)


def _assert_reported(out: Path, count: int) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_prompts"] == summary["context"]["num_prompts"] == count
    assert yaml.safe_load((out / "config.yaml").read_text())["num_prompts"] == count


def test_closed_trace_sessions_wait_for_each_answer(tmp_path: Path) -> None:
    cfg = NodeConfig(
        **TRACE, port=0, trace_sessions="closed", record_ground_truth=True, output_dir=tmp_path,
        sim_args=["--sim-slowdown", "0.2"],
    )  # fmt: skip
    results = NodeTest(cfg).run()
    count = ROWS[1] - ROWS[0]
    assert cfg.num_prompts == count and results.summary["completed"] == count
    _assert_reported(tmp_path, count)
    assert results.summary["trace"]["sessions"] == "closed"
    requests = {r.request_id: r for r in RequestGenerator(seed=cfg.seed).generate_requests(cfg)}
    rows = read_trace(SAMPLE, block_size=64).rows[ROWS[0] : ROWS[1]]
    row_of = {f"req-{i:06d}": row for i, row in enumerate(rows)}
    truth = {t["rid"]: t for t in map(json.loads, (tmp_path / "sim_ground_truth.jsonl").read_text().splitlines())}
    chains: dict[int, list[str]] = {}
    for rid in sorted(requests, key=lambda r: requests[r].arrival_offset_s):
        chain = requests[rid].chain_id
        assert chain is not None  # every sample row has a session_id
        chains.setdefault(chain, []).append(rid)
        assert truth[rid]["prompt_tokens"] == row_of[rid].input_length
        assert truth[rid]["completion_tokens"] == row_of[rid].output_length
    assert sum(len(c) >= 2 for c in chains.values()) >= 5
    for rids in chains.values():
        for prev, cur in itertools.pairwise(rids):
            think_ns = round(requests[cur].think_time_s * 1e9)
            assert think_ns > 0
            assert truth[cur]["arrival_ns"] >= truth[prev]["finish_ns"] + think_ns
            pairs = zip(row_of[prev].hash_ids, row_of[cur].hash_ids, strict=False)
            shared = sum(1 for _ in itertools.takewhile(lambda ab: ab[0] == ab[1], pairs))
            assert truth[cur]["cached_tokens"] >= 64 * shared  # the previous turn's blocks are cached


def test_routing_report_shows_the_requests_the_trace_sends(tmp_path: Path) -> None:
    cfg = RoutingConfig(
        **TRACE, num_gpus=2, routing_policy="round_robin", trace_sessions="closed", routing_key_by="session",
        output_dir=tmp_path,
    )  # fmt: skip
    results = RoutingTest(cfg).run()
    count = ROWS[1] - ROWS[0]
    assert cfg.num_prompts == count and results.summary["completed"] == count
    _assert_reported(tmp_path, count)
