"""NodeTest against the simulator's ground-truth log: exact token counts, timestamps causally ordered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.node import NodeTest
from tests.conftest import sim_run_fields


@pytest.mark.parametrize("api_type", ["sglang", "openai-chat"])
def test_node_test_matches_sim_ground_truth(tmp_path: Path, api_type: str) -> None:
    cfg = NodeConfig(
        **sim_run_fields(tmp_path),
        port=0,
        dataset_name="random",
        random_input_len=300,
        random_output_len=40,
        num_prompts=40,
        request_rate=20.0,
        api_type=api_type,
        record_ground_truth=True,
        max_running_requests=16,
        warmup_requests=1,
    )
    results = NodeTest(cfg).run()
    assert results.summary["completed"] == 40
    truth = {row["rid"]: row for row in map(json.loads, (tmp_path / "sim_ground_truth.jsonl").read_text().splitlines())}
    for rec in results.records:
        row = truth[rec.request_id]
        assert rec.output_tokens == row["completion_tokens"] == rec.expected_output_len
        assert sum(rec.chunk_tokens) == rec.output_tokens
        # One clock (CLOCK_MONOTONIC) on both sides, so causality is exact: the client writes the request
        # before the server receives it, and reads each token after the server produced it. How close the
        # client's TTFT comes to the truth is a benchmark figure (benchmarks/client_accuracy.py), not a test.
        assert rec.first_token_ns is not None and rec.finish_ns is not None
        assert rec.send_ns <= row["arrival_ns"] <= row["first_token_ns"] <= rec.finish_ns
        assert rec.first_token_ns >= row["arrival_ns"]
        assert rec.first_token_ns - rec.send_ns >= row["first_token_ns"] - row["arrival_ns"] - 1_000_000
    files = results["exported_files"]
    assert Path(files["csv"]).exists() and Path(files["json"]).exists() and Path(files["jsonl"]).exists()
    assert len(Path(files["jsonl"]).read_text().splitlines()) == 40
