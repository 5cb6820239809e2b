"""Load stages: the compact syntax, the schedule's integral and its inverse, the generated arrivals, and
one-line errors naming the field and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sglang_test_framework.config.stages import (
    LoadStage,
    inverse_stage_arrivals,
    parse_stages,
    segments,
    stage_arrivals,
)
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator

TINY = {"random_input_len": 4, "random_output_len": 4}


def test_the_compact_syntax_matches_the_yaml_form() -> None:
    parsed = parse_stages("ramp:0-50:30s,constant:50:1m, burst:10/100:5s/5s:60,step:10-40/4:2m,zigzag:0/40:4s:8s")
    assert parsed == [
        {"kind": "ramp", "duration_s": 30.0, "start": 0.0, "end": 50.0},
        {"kind": "constant", "duration_s": 60.0, "value": 50.0},
        {"kind": "burst", "duration_s": 60.0, "low": 10.0, "high": 100.0, "on_s": 5.0, "off_s": 5.0},
        {"kind": "step", "duration_s": 120.0, "start": 10.0, "end": 40.0, "steps": 4},
        {"kind": "zigzag", "duration_s": 8.0, "low": 0.0, "high": 40.0, "period_s": 4.0},
    ]
    from_cli = WorkloadConfig(stages=["ramp:0-50:30s", "constant:50:60s"], **TINY)
    from_yaml = WorkloadConfig(
        stages=[
            {"kind": "ramp", "duration_s": 30, "start": 0, "end": 50},
            {"kind": "constant", "duration_s": 60, "value": 50},
        ],
        **TINY,
    )
    assert from_cli.stages == from_yaml.stages and from_cli.num_prompts == from_yaml.num_prompts == 750 + 3000


def test_each_kind_compiles_to_the_documented_rate() -> None:
    def rate_at(stage: str, t: float) -> float:
        for t0, t1, v0, v1 in segments([LoadStage(**parse_stages(stage)[0])]):
            if t0 <= t < t1:
                return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        raise AssertionError(t)

    assert rate_at("ramp:10-30:10s", 5.0) == 20.0
    assert [rate_at("step:10-40/4:8s", t) for t in (1, 3, 5, 7)] == [10, 20, 30, 40]
    assert [rate_at("burst:1/9:1s/3s:8s", t) for t in (0.5, 2, 4.5, 6)] == [9, 1, 9, 1]
    assert [rate_at("zigzag:0/40:4s:8s", t) for t in (0, 1, 2, 3, 5)] == [0, 20, 40, 20, 20]


def test_the_integral_and_its_inverse_agree_on_every_kind() -> None:
    stages = [LoadStage(**s) for s in parse_stages("ramp:0-50:3s,burst:0/20:1s/1s:4s,zigzag:5/40:2s:3s,ramp:30-10:2s")]
    segs = segments(stages)
    total = stage_arrivals(segs, 12.0)
    assert total == pytest.approx(75 + 40 + (22.5 * 2 + 13.75 + 6.25 * 0) + 40, rel=0.05)
    events = np.linspace(0.0, total, 200, endpoint=False)
    times = inverse_stage_arrivals(segs, events)
    assert np.all(np.diff(times) >= 0)
    assert [stage_arrivals(segs, float(t)) for t in times] == pytest.approx(list(events), abs=1e-6)
    # no arrival in the burst's "off" phases of rate 0: [4, 5) and [6, 7)
    assert not np.any(((times > 4.0) & (times < 5.0)) | ((times > 6.0) & (times < 7.0)))


def test_arrivals_follow_the_schedule() -> None:
    config = WorkloadConfig(stages="constant:20:10s,constant:0:5s,constant:100:5s", **TINY)
    assert config.num_prompts == 200 + 500
    offsets = np.array([r.arrival_offset_s for r in RequestGenerator().generate_requests(config)])
    assert ((offsets >= 10) & (offsets < 15)).sum() == 0
    first, last = ((offsets < 10).sum(), (offsets >= 15).sum())
    assert first + last == 700 and 150 < first < 250  # ~200 expected, Poisson
    explicit = WorkloadConfig(stages="ramp:0-10:10s", num_prompts=40, **TINY)  # the schedule's shape, 40 arrivals
    got = [r.arrival_offset_s for r in RequestGenerator().generate_requests(explicit)]
    assert len(got) == 40 and max(got) < 10.0


def test_virtual_user_stages_set_join_times() -> None:
    config = WorkloadConfig(virtual_users=4, num_prompts=8, stages="constant:1:2s,ramp:1-4:3s", **TINY)
    starts = sorted(
        r.arrival_offset_s for r in RequestGenerator().generate_requests(config) if r.request_id < "req-000004"
    )
    assert starts == pytest.approx([0.0, 3.0, 4.0, 5.0])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stages": "wave:1:2s"}, "unknown stage kind 'wave'"),
        ({"stages": "ramp:5:10s"}, "write a ramp stage as ramp:START-END:DURATION"),
        ({"stages": "constant:x:10s"}, "'x' is not a number"),
        ({"stages": "constant:5:10 years"}, "is not a time"),
        ({"stages": "burst:50/10:1s/1s:4s"}, "low ≤ high"),
        ({"stages": [{"kind": "ramp", "duration_s": 3, "value": 3}]}, "a ramp stage needs start, end"),
        ({"stages": "constant:0:10s"}, "sends no request"),
        ({"stages": "constant:5:10s", "request_rate": 3.0}, "request_rate: not with stages"),
        ({"stages": "constant:5:10s", "ramp_up_s": 3.0}, "ramp_up_s: not with stages"),
        ({"stages": "constant:5:10s", "duration_s": 3.0}, "duration_s: not with stages"),
        ({"stages": "zigzag:0/1:2s:4s", "virtual_users": 1, "num_prompts": 8}, "no user is active"),
        ({"stages": "constant:3:4s", "virtual_users": 4, "num_prompts": 8}, "the stages reach 3 users"),
        ({"stages": "ramp:0-2.5:4s", "virtual_users": 3, "num_prompts": 8}, "use whole numbers"),
    ],
)
def test_bad_stages_name_the_field_and_the_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkloadConfig(**fields, **TINY)


@pytest.mark.parametrize(
    "fields",
    [
        {"stages": "ramp:0-5:4s,burst:1/9:1s/1s:4s"},
        {"stages": "zigzag:0/8:2s:4s", "num_prompts": 7, "measure_window": "auto"},
        {"virtual_users": 3, "num_prompts": 9, "stages": "step:1-3/3:3s"},
        {"dataset_name": "generated-shared-prefix", "gsp_num_turns": 2, "routing_key_by": "session"},
    ],
)
def test_a_saved_config_loads_back_to_the_same_load(fields: dict[str, object]) -> None:
    config = WorkloadConfig(**fields, **TINY)
    again = WorkloadConfig.model_validate(config.model_dump(mode="json"))  # what config.yaml holds
    assert again == config
