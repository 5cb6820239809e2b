"""Stress presets: every preset builds a valid NodeConfig at any scale; the verdict rule; cache benefit tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from sglang_test_framework.analysis.cache_benefit import bucket_labels, cache_benefit_tables, format_cache_benefit
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.stress import PRESETS, judge, preset_values

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("scale", [0.01, 1.0])
def test_every_preset_is_a_valid_config(name: str, scale: float) -> None:
    cfg = NodeConfig.build(model_path=MODEL, **preset_values(name, scale))
    assert cfg.num_prompts >= 1
    if cfg.virtual_users is not None:
        assert cfg.virtual_users <= cfg.num_prompts


def test_scale_multiplies_size_only() -> None:
    full, half = preset_values("sustained-load", 1.0), preset_values("sustained-load", 0.5)
    assert half["duration_s"] == full["duration_s"] / 2 and half["request_rate"] == full["request_rate"]
    assert (
        preset_values("high-concurrency", 0.5)["num_prompts"] == PRESETS["high-concurrency"].values["num_prompts"] / 2
    )
    burst, tenth = preset_values("burst-traffic", 1.0), preset_values("burst-traffic", 0.1)
    for a, b in zip(burst["stages"], tenth["stages"], strict=True):
        assert b["duration_s"] == pytest.approx(a["duration_s"] / 10)
        assert b.get("high") == a.get("high") and b.get("value") == a.get("value")
    full_count = NodeConfig.build(model_path=MODEL, **burst).num_prompts
    assert NodeConfig.build(model_path=MODEL, **tenth).num_prompts == round(full_count / 10)


def test_user_size_replaces_the_presets() -> None:
    values = preset_values("sustained-load", 1.0, given={"num_prompts": 10})
    assert "duration_s" not in values and "num_prompts" not in values
    capped = preset_values("high-concurrency", 1.0, given={"num_prompts": 5})
    assert capped["virtual_users"] == 5


def _summary(total: int, completed: int, **extra: Any) -> dict[str, Any]:
    return {"total_requests": total, "completed": completed, **extra}


def test_verdict_threshold_is_inclusive_and_counts_server_exits() -> None:
    assert judge("p", _summary(10, 8), 0.8).passed
    failed = judge("p", _summary(10, 7), 0.8)
    assert not failed.passed and "FAIL" in failed.line() and "70.0 % < 80.0 %" in failed.line()
    died = judge("p", _summary(10, 10, server_exits=[{"name": "server_0", "exit_code": 1}]), 0.8)
    assert not died.passed and "server_0 exited" in died.line()
    assert not judge("p", _summary(0, 0), 0.0).passed
    windowed = judge("p", _summary(5, 5, run_totals={"total_requests": 10, "completed": 5}), 0.8)
    assert not windowed.passed and windowed.total == 10


def _table(ttft: list[float], cached: list[int], prompt: list[int], turn: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "success": [True] * len(ttft),
            "ttft_ms": ttft,
            "server_latency_ms": [t * 2 for t in ttft],
            "cached_tokens": cached,
            "prompt_len": prompt,
            "turn": turn,
        }
    )


def test_cache_benefit_tables_by_bucket_and_turn() -> None:
    prompts, turns = [300, 600, 3000, 3000], [0, 0, 1, 1]
    tables = {
        "disabled": _table([10, 20, 100, 100], [0, 0, 0, 0], prompts, turns),
        "cold": _table([10, 20, 50, 50], [0, 0, 1500, 1500], prompts, turns),
        "warm": _table([5, 5, 10, 10], [250, 550, 2900, 2900], prompts, turns),
    }
    result = cache_benefit_tables(tables, [512, 1024, 2048])
    assert [row["bucket"] for row in result["by_bucket"]] == ["<512", "512-1023", ">=2048"]
    assert [row["turn"] for row in result["by_turn"]] == [0, 1]
    long = result["by_bucket"][-1]
    assert long["speedups"]["warm_vs_cold"]["ttft"] == 5.0
    assert long["speedups"]["cold_vs_disabled"]["ttft"] == 2.0
    assert long["modes"]["warm"]["cached_share"] == pytest.approx(2900 / 3000)
    assert result["overall"]["modes"]["cold"]["requests"] == 4
    text = format_cache_benefit(result)
    assert "warm vs cold" in text and ">=2048" in text
    assert bucket_labels([512, 1024]) == ["<512", "512-1023", ">=1024"]
