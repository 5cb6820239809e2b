"""Mixed workloads: exact counts per component, one merged seeded arrival process, validation errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.config.workload_mix import mix_counts
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.records import RequestRecord

MIX: list[dict[str, Any]] = [
    {"name": "short-chat", "weight": 70, "random_input_len": 32, "random_output_len": 8, "random_range_ratio": 1.0},
    {"name": "long-context", "weight": 20, "random_input_len": 900, "random_output_len": 4, "random_range_ratio": 1.0},
    {
        "name": "shared-prefix",
        "weight": 10,
        "dataset_name": "generated-shared-prefix",
        "gsp_group_distribution": "zipf",
        "gsp_num_groups": 2,
        "gsp_system_prompt_len": 100,
        "gsp_question_len": 10,
        "gsp_output_len": 6,
    },
]


def _config(**extra: Any) -> WorkloadConfig:
    return WorkloadConfig.build(dataset_name="random", num_prompts=100, request_rate=50.0, workload_mix=MIX, **extra)


def test_mix_counts_are_exact_and_sum_to_total() -> None:
    assert mix_counts([70, 20, 10], 100) == [70, 20, 10]
    assert mix_counts([1, 1, 1], 10) == [4, 3, 3]
    assert sum(mix_counts([0.3, 0.3, 0.4], 7)) == 7


def test_mixed_requests_follow_weights_lengths_and_one_arrival_process() -> None:
    cfg = _config()
    requests = RequestGenerator(seed=7).generate_requests(cfg)
    assert len(requests) == 100
    assert Counter(r.workload for r in requests) == {"short-chat": 70, "long-context": 20, "shared-prefix": 10}
    for r in requests:
        if r.workload == "short-chat":
            assert (r.prompt_len, r.output_len) == (32, 8)
        elif r.workload == "long-context":
            assert (r.prompt_len, r.output_len) == (900, 4)
        else:
            assert r.prompt_len == 110 and r.output_len == 6 and r.group_id in (0, 1)
    # one arrival process: the offsets are those of the same config without a mix
    plain = RequestGenerator(seed=7).shaped_arrival_offsets(cfg, 100)
    assert sorted(r.arrival_offset_s for r in requests) == sorted(plain)
    # the components are interleaved, not sent one after another
    first_half = Counter(r.workload for r in requests[:50])
    assert all(first_half[name] > 0 for name in ("short-chat", "long-context", "shared-prefix"))
    assert [r.request_id for r in requests] == [r.request_id for r in RequestGenerator(seed=7).generate_requests(cfg)]
    assert [r.prompt for r in requests] == [r.prompt for r in RequestGenerator(seed=7).generate_requests(cfg)]


def test_mix_from_yaml_form_round_trips(tmp_path: Any) -> None:
    cfg = _config()
    path = tmp_path / "mix.yaml"
    cfg.to_yaml(path)
    again = WorkloadConfig.from_yaml(path)
    assert again.workload_mix == cfg.workload_mix


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "weight": 1, "request_rate": 5}, "request_rate: a mix component sets only dataset"),
        ({"name": "a", "weight": 0}, "weight"),
        ({"name": "bad name", "weight": 1}, "use 1-64 letters"),
        ({"name": "a", "weight": 1, "random_input_len": -3}, "component 'a': random_input_len"),
        ({"name": "a", "weight": 1, "dataset_name": "multi-turn"}, "sets its own request count"),
    ],
)
def test_bad_mix_entries_name_the_field(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkloadConfig.build(workload_mix=[entry])


def test_duplicate_component_names_rejected() -> None:
    with pytest.raises(ConfigError, match="used twice"):
        WorkloadConfig.build(workload_mix=[{"name": "a", "weight": 1}, {"name": "a", "weight": 2}])


def test_record_workload_survives_dict_round_trip() -> None:
    record = RequestRecord(request_id="r", workload="chat")
    assert RequestRecord.from_dict(record.to_dict()).workload == "chat"
    old = record.to_dict()
    del old["workload"]
    assert RequestRecord.from_dict(old).workload is None
