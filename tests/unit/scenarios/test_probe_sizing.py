"""How long each probe of a search runs, and what it is measured over (no server)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.search_config import ProbeSettings, SaturationSweepConfig, SLOSearchConfig
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.scenarios.probe import probe_config

OUT = Path("probe")


def base(**values: Any) -> NodeConfig:
    return NodeConfig(**{"model_path": "m", "backend": "sim", "dataset_name": "random", **values})


def test_a_probe_lasts_at_least_min_duration_and_min_requests() -> None:
    settings = ProbeSettings(min_duration_s=20, min_requests=50)
    fast = probe_config(base(), settings, 10.0, OUT)
    assert (fast.duration_s, fast.num_prompts, fast.measure_window) == (20.0, 200, "auto")
    slow = probe_config(base(), settings, 1.0, OUT)
    assert (slow.duration_s, slow.num_prompts) == (50.0, 50)  # 50 requests take 50 s at 1 req/s
    assert (fast.warmup_requests, probe_config(base(), settings, 10.0, OUT, first=True).warmup_requests) == (0, 2)


def test_num_prompts_of_the_base_is_a_floor_and_duration_a_minimum() -> None:
    settings = ProbeSettings(min_duration_s=4, min_requests=10)
    assert probe_config(base(num_prompts=40), settings, 1000.0, OUT).duration_s == 4.0  # not a 0.04 s burst
    assert probe_config(base(num_prompts=40), settings, 2.0, OUT).duration_s == 20.0
    assert probe_config(base(request_rate=1, duration_s=30), settings, 8.0, OUT).duration_s == 30.0
    ramped = probe_config(base(request_rate=8, duration_s=6, ramp_up_s=2), settings, 8.0, OUT)
    assert (ramped.duration_s, ramped.ramp_up_s) == (6.0, 2.0)  # the ramp-up comes on top of the minimum
    assert probe_config(base(request_rate=8, ramp_up_s=2, num_prompts=100), settings, 8.0, OUT).duration_s == 14.5


def test_a_burst_keeps_its_count_and_the_whole_run() -> None:
    burst = probe_config(base(request_rate=5, duration_s=10), ProbeSettings(), math.inf, OUT, burst_requests=64)
    assert (burst.num_prompts, burst.duration_s, burst.measure_window) == (64, None, "all")


def test_a_base_that_cannot_be_sized_by_time_fails_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="duration_s: multi-turn defines its own request count"):
        probe_config(base(dataset_name="multi-turn"), ProbeSettings(), 2.0, OUT)


def test_search_settings_are_validated() -> None:
    assert ProbeSettings(max_drain_s=10).drain_s(25.0) == 25.0
    with pytest.raises(ConfigError, match="unknown SLO keys"):
        SLOSearchConfig.build(slos_ms={"latency": 1.0})
    with pytest.raises(ConfigError, match="positive number of milliseconds"):
        SLOSearchConfig.build(slos_ms={"ttft": -1.0})
    with pytest.raises(ConfigError, match="start_rate"):
        SLOSearchConfig.build(slos_ms={"ttft": 100.0}, start_rate=10, max_rate=5)
    with pytest.raises(ConfigError, match="low_fraction"):
        SaturationSweepConfig.build(low_fraction=1.5, high_fraction=1.2)
