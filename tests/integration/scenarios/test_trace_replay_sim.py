"""Acceptance: replaying the first rows of the Mooncake conversation trace against the simulator.

Checked against the sim's ground-truth log: every prompt has exactly ``input_length`` tokens and every
output ``output_length``; requests are scheduled at the scaled trace times and never sent before them
(the pacing error is reported); the sim's measured prefix-cache hit rate matches the ideal rate the
trace's hash ids imply for the sim's KV capacity (smaller than the slice, so blocks are evicted and that
rate differs from the unlimited-cache one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.load.trace_tools import ideal_hit_rate
from sglang_test_framework.scenarios.node import NodeTest
from sglang_test_framework.traces import read_trace
from tests.conftest import shared_traces_dir, sim_run_fields

MOONCAKE = shared_traces_dir() / "mooncake" / "conversation_trace.jsonl"
ROWS = 150
SPEEDUP = 100.0
KV_TOKENS = 300_000  # the slice sends 2.1 M prompt tokens: the cache evicts
HIT_RATE_TOLERANCE = 0.005
"""Measured may fall below ideal by at most 0.5 percentage points (requests of one volley, at the same
trace timestamp, prefilled in one batch cannot hit each other's blocks; running requests pin KV the ideal
LRU would keep) and exceed it only by chance token matches at block boundaries (1 / 32,000 each)."""


@pytest.mark.skipif(not MOONCAKE.exists(), reason="shared Mooncake trace not present")
def test_mooncake_replay_matches_trace_and_sim_truth(tmp_path: Path) -> None:
    cfg = NodeConfig(
        **sim_run_fields(tmp_path),
        port=0,
        dataset_name="trace",
        dataset_path=MOONCAKE,
        num_prompts=ROWS,
        trace_speedup=SPEEDUP,
        record_ground_truth=True,
        max_total_tokens=KV_TOKENS,
        context_length=262_144,
        sim_args=["--sim-slowdown", "0.005", "--sim-jitter-cv", "0"],
        warmup_requests=0,
    )
    results = NodeTest(cfg).run()
    rows = read_trace(MOONCAKE).rows[:ROWS]
    assert results.summary["completed"] == ROWS
    truth = {t["rid"]: t for t in map(json.loads, (tmp_path / "sim_ground_truth.jsonl").read_text().splitlines())}
    records = sorted(results.records, key=lambda r: r.request_id)
    start_ns = min(r.scheduled_ns for r in records)
    for rec, row in zip(records, rows, strict=True):
        t = truth[rec.request_id]
        assert rec.prompt_len == t["prompt_tokens"] == row.input_length
        assert rec.output_tokens == t["completion_tokens"] == row.output_length
        assert rec.scheduled_ns - start_ns == pytest.approx(row.timestamp_ns / SPEEDUP, abs=1)
        assert rec.scheduled_ns <= rec.arrival_ns <= rec.send_ns <= t["arrival_ns"]
    measured = sum(t["cached_tokens"] for t in truth.values()) / sum(t["prompt_tokens"] for t in truth.values())
    ideal = ideal_hit_rate(rows, 512, KV_TOKENS)
    unlimited = ideal_hit_rate(rows, 512)
    assert ideal is not None and unlimited is not None and unlimited - ideal > 2 * HIT_RATE_TOLERANCE
    assert ideal - HIT_RATE_TOLERANCE <= measured <= ideal + 1e-4
    block = results.summary["trace"]
    assert block["trace"]["rows"] == ROWS and block["trace"]["hit_rate_infinite"] == pytest.approx(unlimited)
    assert block["trace"]["hit_rate_at_max_total_tokens"] == pytest.approx(ideal)
    assert block["measured"]["input_length"]["mean"] == pytest.approx(sum(r.input_length for r in rows) / ROWS)
    pacing = block["pacing_error_ms"]
    assert 0 <= pacing["p50"] <= pacing["p99"] <= pacing["max"]
    assert block["measured"]["cache_hit_rate"] == pytest.approx(measured)
