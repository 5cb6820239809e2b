"""Dataset loaders: num_prompts is the number sent, malformed files fail (or are skipped) in one line."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.errors import ConfigError, DatasetError
from sglang_test_framework.load.request_generator import RequestGenerator

GOOD_TURNS = [{"from": "human", "value": "one two three four"}, {"from": "gpt", "value": "five six seven"}]


def _write_json(tmp_path: Path, rows: Any, name: str = "data.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


def _write_jsonl(tmp_path: Path, rows: list[Any], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_builtin_sample_with_context_len_256_pads_to_num_prompts() -> None:
    cfg = WorkloadConfig(dataset_name="sharegpt", sharegpt_context_len=256)
    reqs = RequestGenerator().generate_requests(cfg)
    assert len(reqs) == cfg.num_prompts == 200
    assert all(r.prompt_len + r.output_len <= 256 for r in reqs)
    assert len({r.prompt for r in reqs}) < 200  # fewer usable conversations than requests: repeated


def test_sharegpt_skips_malformed_conversations_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [
        {"conversations": GOOD_TURNS},
        "not an object",
        {"conversations": ["a string turn", GOOD_TURNS[1]]},
        {"messages": "a string, not a list"},
        {"conversations": [{"from": 1, "value": "x y"}, GOOD_TURNS[1]]},
        {"conversations": [{"from": "human", "value": ["x"]}, GOOD_TURNS[1]]},
        {"conversations": GOOD_TURNS[:1]},
        {"messages": [{"role": "user", "content": "alpha beta gamma"}, {"role": "assistant", "content": "d e"}]},
    ]
    path = _write_json(tmp_path, rows)
    with caplog.at_level(logging.WARNING, logger="sglang_test_framework.load.datasets"):
        reqs = RequestGenerator().generate_requests(
            WorkloadConfig(dataset_name="sharegpt", dataset_path=path, num_prompts=6)
        )
    assert len(reqs) == 6
    assert {r.prompt for r in reqs} == {"one two three four", "alpha beta gamma"}
    assert "skipped 6 conversations" in caplog.text


def test_sharegpt_with_nothing_usable_raises_with_the_counts(tmp_path: Path) -> None:
    path = _write_json(tmp_path, [{"messages": "text"}, {"conversations": [1, 2]}])
    with pytest.raises(DatasetError, match="no usable conversation") as info:
        RequestGenerator().generate_requests(WorkloadConfig(dataset_name="sharegpt", dataset_path=path))
    message = str(info.value)
    assert "1 conversations/messages is missing or not a list" in message and "\n" not in message


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'[\n{"conversations": [\n{"from": "human", "value": "caf\xe9"}]}]', r"data\.json:3: .* not UTF-8"),
        (b'[\n{"conversations": }\n]', r"data\.json:2: not valid JSON"),
        (b'{"conversations": []}', "expected a JSON list"),
    ],
)
def test_unreadable_sharegpt_files_name_file_and_line(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as info:
        RequestGenerator().generate_requests(WorkloadConfig(dataset_name="sharegpt", dataset_path=path))
    assert "\n" not in str(info.value)


def test_non_utf8_jsonl_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"prompt": "ok", "output_len": 3}\n\n{"prompt": "caf\xe9", "output_len": 3}\n')
    with pytest.raises(DatasetError, match=r"rows\.jsonl:3: the JSONL file is not UTF-8 .*iconv"):
        RequestGenerator().generate_requests(WorkloadConfig(dataset_name="custom", dataset_path=path))


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"messages": "hello there"}, '"messages" must be a non-empty list'),
        ({"messages": ["hello"]}, r"messages\[0\] must be an object"),
        ({"messages": [{"role": "user"}]}, r"messages\[0\] must be an object"),
        ({"messages": [{"role": "user", "content": 5}]}, r"messages\[0\] must be an object"),
        ({"prompt": 5}, 'non-empty string "prompt"'),
        ({"prompt": "   "}, 'non-empty string "prompt"'),
        ({"prompt": "a b", "output_len": True}, '"output_len" must be an integer'),
        ({"prompt": "a b", "output_len": 2.5}, '"output_len" must be an integer'),
        ({"prompt": "a b", "output_len": 10**9}, '"output_len" must be an integer'),
        (["a list"], "expected a JSON object"),
    ],
)
def test_bad_custom_rows_name_the_line(tmp_path: Path, row: Any, match: str) -> None:
    path = _write_jsonl(tmp_path, [{"prompt": "fine", "output_len": 2}, row])
    with pytest.raises(DatasetError, match=match) as info:
        RequestGenerator().generate_requests(WorkloadConfig(dataset_name="custom", dataset_path=path))
    assert "rows.jsonl:2:" in str(info.value) and "\n" not in str(info.value)


def test_custom_chat_messages_are_kept_and_joined_into_the_prompt(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
    path = _write_jsonl(tmp_path, [{"messages": messages, "max_tokens": 5}])
    (req,) = RequestGenerator().generate_requests(
        WorkloadConfig(dataset_name="custom", dataset_path=path, num_prompts=1)
    )
    assert (req.prompt, req.prompt_len, req.output_len, req.messages) == ("be brief hi there", 4, 5, messages)


def _configs(tmp_path: Path) -> list[WorkloadConfig]:
    custom = _write_jsonl(tmp_path, [{"prompt": f"p {i}", "output_len": 2} for i in range(3)])
    small = {"gsp_system_prompt_len": 8, "gsp_question_len": 2, "multi_turn_user_len": 2}
    return [
        WorkloadConfig(dataset_name="random", num_prompts=17, random_input_len=8, random_output_len=2),
        WorkloadConfig(dataset_name="sharegpt", num_prompts=401),  # more than the 300 sample conversations
        WorkloadConfig(dataset_name="custom", dataset_path=custom, num_prompts=7),
        WorkloadConfig(dataset_name="generated-shared-prefix", gsp_num_groups=3, gsp_prompts_per_group=5, **small),
        WorkloadConfig(dataset_name="generated-shared-prefix", gsp_group_distribution="zipf", num_prompts=11, **small),
        WorkloadConfig(dataset_name="multi-turn", multi_turn_num_conversations=4, multi_turn_turns=3, **small),
    ]


def test_num_prompts_is_the_number_of_requests_for_every_dataset(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    assert {c.dataset_name for c in configs} == {
        "random",
        "sharegpt",
        "custom",
        "generated-shared-prefix",
        "multi-turn",
    }
    counts = [c.num_prompts for c in configs]
    assert counts == [17, 401, 7, 15, 11, 12]
    for cfg in configs:
        assert len(RequestGenerator().generate_requests(cfg)) == cfg.num_prompts, cfg.dataset_name


def test_datasets_with_their_own_count_reject_a_different_num_prompts() -> None:
    with pytest.raises(ValidationError, match="sends gsp_num_groups × gsp_prompts_per_group = 128 requests, not 50"):
        WorkloadConfig(dataset_name="generated-shared-prefix", num_prompts=50)
    with pytest.raises(ValidationError, match="multi_turn_num_conversations × multi_turn_turns = 64 requests"):
        WorkloadConfig(dataset_name="multi-turn", num_prompts=10)
    assert WorkloadConfig(dataset_name="multi-turn", num_prompts=64).num_prompts == 64
    cfg = WorkloadConfig(dataset_name="generated-shared-prefix", gsp_num_groups=2, gsp_prompts_per_group=3)
    cfg.gsp_num_groups = 4  # re-derived on assignment
    assert cfg.num_prompts == 12
    with pytest.raises(DatasetError, match="produced 12 requests but num_prompts is 5"):
        RequestGenerator().generate_requests(cfg.model_copy(update={"num_prompts": 5}))


def test_arrival_arguments_are_checked() -> None:
    gen = RequestGenerator(1)
    for rate in (math.nan, 0.0, 1e-300):
        with pytest.raises(ConfigError, match="rate"):
            gen.arrival_offsets(3, rate)
    with pytest.raises(ConfigError, match="burstiness"):
        gen.arrival_offsets(3, 1.0, burstiness=math.inf)
    with pytest.raises(ConfigError, match="finite"):
        gen.generate_poisson_arrivals(math.inf, 10.0)  # used to loop forever
    with pytest.raises(ConfigError, match="finite"):
        gen.generate_poisson_arrivals(1.0, math.inf)
    assert gen.arrival_offsets(0, 5.0) == []
