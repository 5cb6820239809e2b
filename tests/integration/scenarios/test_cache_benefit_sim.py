"""Cache benefit on the sim: the warm / cache-enabled side has more cached tokens and a lower median TTFT
for long prefixes than the cold / cache-disabled side (relations only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.cache_benefit import PLOT_FILE, RESULT_FILE, run_cache_benefit

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


def test_cache_benefit_warm_and_enabled_beat_cold_and_disabled(tmp_path: Path) -> None:
    cfg = NodeConfig(
        model_path=MODEL,
        backend="sim",
        port=0,
        dataset_name="multi-turn",
        multi_turn_num_conversations=4,
        multi_turn_turns=2,
        multi_turn_user_len=1500,
        multi_turn_assistant_len=8,
        multi_turn_think_time_s=0.05,
        request_rate=20.0,
        output_dir=tmp_path,
        progress=False,
        warmup_requests=1,
    )
    result = run_cache_benefit(cfg, [2048])
    assert set(result.runs) == {"disabled", "cold", "warm"}
    assert all(run.summary["completed"] == 8 for run in result.runs.values())
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert (tmp_path / PLOT_FILE).stat().st_size > 0
    assert [row["turn"] for row in saved["by_turn"]] == [0, 1]
    assert [row["bucket"] for row in saved["by_bucket"]] == ["<2048", ">=2048"]

    first, second = saved["by_turn"]
    # turn 0 (1500-token prompts): only the pre-warmed cache holds them
    assert first["modes"]["warm"]["cached_share"] > first["modes"]["cold"]["cached_share"]
    assert first["modes"]["warm"]["median_ttft_ms"] < first["modes"]["cold"]["median_ttft_ms"]
    assert first["modes"]["warm"]["median_ttft_ms"] < first["modes"]["disabled"]["median_ttft_ms"]
    # turn 1 (long prefixes, ≥ 3000 tokens): reuse within the run needs the cache; warm holds all of it
    long = saved["by_bucket"][1]["modes"]
    assert long["disabled"]["cached_share"] == 0
    assert long["cold"]["cached_share"] > long["disabled"]["cached_share"]
    assert long["warm"]["cached_share"] > long["cold"]["cached_share"]
    assert long["warm"]["median_ttft_ms"] < long["cold"]["median_ttft_ms"]
    assert long["warm"]["median_ttft_ms"] < long["disabled"]["median_ttft_ms"]
    assert second["speedups"]["warm_vs_disabled"]["ttft"] > 1
    for mode in ("disabled", "cold", "warm"):
        assert (tmp_path / mode / "summary.json").is_file()


def test_cache_benefit_cli_bad_bucket_edges_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sglang_test_framework", "cache-benefit", "--bucket-edges", "10", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "bucket_edges" in proc.stderr and "Traceback" not in proc.stderr
