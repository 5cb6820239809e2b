"""Loads sized by duration, linear ramp-ups and measurement windows: how they combine, what they reject,
and the arrivals they produce."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sglang_test_framework.config.base import load_yaml_mapping
from sglang_test_framework.config.load_shape import expected_arrivals, inverse_expected_arrivals
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.load.request_generator import RequestGenerator


def build(**values: Any) -> WorkloadConfig:
    return WorkloadConfig.build(**{"dataset_name": "random", "random_input_len": 8, "random_output_len": 4, **values})


def offsets(cfg: WorkloadConfig, seed: int = 3) -> np.ndarray:
    return np.array([r.arrival_offset_s for r in RequestGenerator(seed).generate_requests(cfg)])


def test_duration_sets_num_prompts_to_rate_times_duration() -> None:
    assert build(request_rate=10, duration_s=5).num_prompts == 50
    assert build(request_rate=2.5, duration_s=3).num_prompts == 8  # round(7.5)
    assert build(request_rate=0.01, duration_s=1).num_prompts == 1  # at least one
    # a ramp-up counts at its mean rate: (0 + 10) / 2 × 4 s + 10 × 6 s
    assert build(request_rate=10, duration_s=10, ramp_up_s=4).num_prompts == 80
    assert build(request_rate=10, duration_s=10, ramp_up_s=4, ramp_up_start_rate=5).num_prompts == 90


def test_duration_and_num_prompts_must_agree() -> None:
    assert build(request_rate=10, duration_s=5, num_prompts=50).num_prompts == 50
    with pytest.raises(ConfigError) as err:
        build(request_rate=10, duration_s=5, num_prompts=40)
    assert "sends 50 requests, not 40" in str(err.value) and "not both" in str(err.value)


def test_a_saved_config_loads_back_to_the_same_load(tmp_path: Any) -> None:
    cfg = NodeConfig(model_path="m", backend="sim", request_rate=4, duration_s=7.5, ramp_up_s=2, measure_window="auto")
    cfg.to_yaml(tmp_path / "c.yaml")
    again = NodeConfig.from_mapping(load_yaml_mapping(tmp_path / "c.yaml"))
    assert (again.num_prompts, again.duration_s, again.measure_window) == (cfg.num_prompts, 7.5, "auto")
    fixed = cfg.with_updates(measure_window=[2, 6])
    fixed.to_yaml(tmp_path / "f.yaml")
    assert NodeConfig.from_mapping(load_yaml_mapping(tmp_path / "f.yaml")).measure_window == (2.0, 6.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"duration_s": 5}, "duration_s: needs a finite request_rate"),
        ({"duration_s": 5, "request_rate": 1, "dataset_name": "multi-turn"}, "defines its own request count"),
        ({"duration_s": 5, "request_rate": 1, "dataset_name": "generated-shared-prefix"}, "gsp_group_distribution"),
        ({"ramp_up_s": 5}, "ramp_up_s: needs a finite request_rate"),
        ({"ramp_up_s": 5, "request_rate": 2, "ramp_up_start_rate": 3}, "ramp_up_start_rate"),
        ({"ramp_up_s": 5, "request_rate": 2, "duration_s": 4}, "longer than ramp_up_s"),
        ({"ramp_up_s": 5, "request_rate": 2, "num_prompts": 5}, "the ramp-up alone sends about 5 requests"),
        ({"measure_window": "auto"}, "measure_window: needs a finite request_rate"),
        ({"measure_window": "late", "request_rate": 1}, "use all, auto, or START,END"),
        ({"measure_window": "6,2", "request_rate": 1}, "0 ≤ start < end"),
        ({"measure_window": [1, 2, 3], "request_rate": 1}, "measure_window"),
        ({"measure_window": "9,12", "request_rate": 1, "duration_s": 8}, "after the load ends"),
    ],
)
def test_invalid_shapes_name_the_field_and_the_fix(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(**values)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_measure_window_accepts_the_command_line_and_yaml_forms() -> None:
    assert build(request_rate=1, measure_window="10,60").measure_window == (10.0, 60.0)
    assert build(request_rate=1, measure_window="10:60").measure_window == (10.0, 60.0)
    assert build(request_rate=1, measure_window=[10, 60]).measure_window == (10.0, 60.0)
    assert build().measure_window == "all"


def test_expected_arrivals_and_its_inverse_agree_across_the_ramp() -> None:
    t = np.linspace(0.0, 20.0, 401)
    for start_rate in (0.0, 2.0, 10.0):
        events = np.array([expected_arrivals(float(x), 10.0, 5.0, start_rate) for x in t])
        assert np.allclose(inverse_expected_arrivals(events, 10.0, 5.0, start_rate), t, atol=1e-9)
        assert np.all(np.diff(events) > 0)
    assert np.allclose(inverse_expected_arrivals(np.array([0.0, 5.0]), 2.0), [0.0, 2.5])


def test_duration_arrivals_fill_the_duration_exactly() -> None:
    cfg = build(request_rate=20, duration_s=6)
    times = offsets(cfg)
    assert len(times) == cfg.num_prompts == 120
    assert times[0] == 0.0 and times[-1] < 6.0 and np.all(np.diff(times) >= 0)
    assert np.array_equal(times, offsets(cfg))  # seeded
    assert not np.array_equal(times, offsets(cfg, seed=4))


def test_without_duration_or_ramp_the_arrivals_are_unchanged() -> None:
    cfg = build(request_rate=7, num_prompts=30, burstiness=0.5)
    assert offsets(cfg).tolist() == RequestGenerator(3).arrival_offsets(30, 7, 0.5)


def test_a_ramp_rises_to_the_target_rate() -> None:
    cfg = build(request_rate=40, duration_s=30, ramp_up_s=10)
    times = offsets(cfg)
    first, second = int(((times >= 0) & (times < 5)).sum()), int(((times >= 5) & (times < 10)).sum())
    after = ((times >= 10) & (times < 30)).sum() / 20
    assert first < second < 5 * after  # the rate rises through the ramp, then stays at the target
    assert abs(after - 40) < 0.1 * 40  # 800 arrivals: the target rate within 10%
    assert abs(first - 50) < 0.3 * 50 and abs(second - 150) < 0.3 * 150  # Λ: 50 and 150 expected


def test_node_config_and_routing_config_accept_the_shape() -> None:
    from sglang_test_framework.config.routing_config import RoutingConfig

    node = NodeConfig(model_path="m", backend="sim", request_rate=5, duration_s=4, measure_window="auto")
    routing = RoutingConfig(
        model_path="m", backend="sim", num_gpus=2, dataset_name="random", request_rate=5, duration_s=4, ramp_up_s=1
    )
    assert (node.num_prompts, routing.num_prompts) == (20, 18)
    with pytest.raises(ValueError, match="gsp_group_distribution='zipf'"):  # its default dataset defines the count
        RoutingConfig(model_path="m", backend="sim", num_gpus=2, request_rate=5, duration_s=4)
