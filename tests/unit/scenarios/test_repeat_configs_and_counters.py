"""Repeat configs (directories, seeds), routing request counters across restarts, the soak verdict."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.sweep_config import SweepConfig
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.metrics.trends import LeakRule, memory_trends
from sglang_test_framework.results import RunResults
from sglang_test_framework.scenarios.repeats import repeat_configs
from sglang_test_framework.scenarios.routing import _served
from sglang_test_framework.scenarios.soak import SoakResult, run_soak


def node(tmp_path: Path, **values: object) -> NodeConfig:
    return NodeConfig(model_path="m", output_dir=tmp_path / "run", **values)


def test_each_repeat_has_its_own_directory_and_seed(tmp_path: Path) -> None:
    same = repeat_configs(node(tmp_path, repeats=3, seed=7))
    assert [c.output_dir for c in same] == [tmp_path / "run" / f"rep-{k}" for k in range(3)]
    assert [c.seed for c in same] == [7, 7, 7] and all(c.repeats == 1 for c in same)
    increment = repeat_configs(node(tmp_path, repeats=3, seed=7, repeat_seed="increment"))
    assert [c.seed for c in increment] == [7, 8, 9]
    routing = RoutingConfig(model_path="m", num_gpus=2, repeats=2, output_dir=tmp_path / "r")
    assert [c.output_dir.name for c in repeat_configs(routing)] == ["rep-0", "rep-1"]


def test_repeats_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repeats"):
        node(tmp_path, repeats=0)
    with pytest.raises(ValueError, match="repeat_seed"):
        node(tmp_path, repeat_seed="random")
    with pytest.raises(ValueError, match="sweep --repeats"):
        SweepConfig(base=node(tmp_path, repeats=2), grid={"request_rate": [1.0]})
    with pytest.raises(ConfigError, match="repeats"):
        run_soak(node(tmp_path, repeats=2, request_rate=1.0), 1.0)


def test_sweep_repeats_use_the_base_repeat_seed(tmp_path: Path) -> None:
    base = node(tmp_path, seed=5, repeat_seed="increment")
    sweep = SweepConfig(base=base, grid={"request_rate": [1.0, 2.0]}, repeats=2, output_dir=tmp_path / "s")
    points = sweep.points()
    assert [p.repeat for p in points] == [0, 1, 0, 1]
    assert [sweep.point_config(p).seed for p in points] == [5, 6, 5, 6]
    same = SweepConfig(base=node(tmp_path, seed=5), grid={"request_rate": [1.0]}, repeats=2)
    assert {same.point_config(p).seed for p in same.points()} == {5}


def test_requests_served_add_up_across_a_restart() -> None:
    counters = {"start": {"w0": 100.0, "w1": 50.0, "w2": 10.0}, "end": {"w0": 160.0, "w1": 30.0, "w2": math.nan}}
    # w1: killed when its counter read 80, restarted reading 2 (health checks), 30 at the end
    trail = {"w1": [[80.0], [2.0]], "w2": [[25.0]]}  # w2: killed, never restarted
    served, resets = _served(counters, trail)
    assert served["w0"] == 60.0
    assert served["w1"] == (80.0 - 50.0) + (30.0 - 2.0)  # never −20 (end − start across the restart)
    assert served["w2"] == 15.0  # counted until the kill
    assert resets == ["w1"]


def test_a_counter_that_went_down_is_a_lower_bound_never_negative() -> None:
    served, resets = _served({"start": {"w0": 40.0}, "end": {"w0": 1.0}}, {})
    assert served == {"w0": 1.0} and resets == ["w0"]
    unknown, _ = _served({"start": {"w0": math.nan}, "end": {"w0": math.nan}}, {})
    assert math.isnan(unknown["w0"])


def test_soak_text_prints_the_rule_and_each_verdict() -> None:
    rows = [
        {"t_s": t, "target": "sim", "metric": "process_rss_bytes", "value": (200 + 0.05 * t) * 2**20} for t in range(60)
    ]
    rule = LeakRule()
    trends = memory_trends(pd.DataFrame(rows))
    results = RunResults(name="soak", kind="node", summary={}, requests=pd.DataFrame(), records=[])
    text = SoakResult(results, trends, rule).to_text()
    assert "Rule: leak suspected when RSS grows steadily: slope ≥ 1 MiB/min and r² ≥ 0.6" in text
    assert "growth ≥ 5 MiB" in text and "no leak: growth +2.95 < 5 MiB" in text
