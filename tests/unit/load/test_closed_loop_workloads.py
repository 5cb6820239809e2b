"""Generated closed-loop workloads: sessions (multi-turn, ShareGPT sessions, shared-prefix turns) and
virtual users become chains with the documented ids, think times, routing keys and offsets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.records import Request

SMALL_GSP = {"gsp_num_groups": 2, "gsp_prompts_per_group": 3, "gsp_system_prompt_len": 8, "gsp_question_len": 3}


def by_chain(requests: list[Request]) -> dict[int, list[Request]]:
    chains: dict[int, list[Request]] = {}
    for req in requests:
        assert req.chain_id is not None
        chains.setdefault(req.chain_id, []).append(req)
    return {c: sorted(reqs, key=lambda r: r.arrival_offset_s) for c, reqs in chains.items()}


def test_shared_prefix_turns_open_one_conversation_per_prompt() -> None:
    cfg = WorkloadConfig(dataset_name="generated-shared-prefix", gsp_num_turns=3, routing_key_by="group", **SMALL_GSP)
    assert cfg.num_prompts == 2 * 3 * 3
    chains = by_chain(RequestGenerator().generate_requests(cfg))
    assert len(chains) == 6 and all(len(turns) == 3 for turns in chains.values())
    assert Counter(turns[0].group_id for turns in chains.values()) == {0: 3, 1: 3}
    for turns in chains.values():
        assert [t.turn for t in turns] == [0, 1, 2] and [t.extends_previous for t in turns] == [False, True, True]
        assert {t.group_id for t in turns} == {turns[0].group_id}
        assert {t.routing_key for t in turns} == {f"group-{turns[0].group_id}"}
        assert turns[0].prompt_len == 8 + 3 and turns[1].prompt_len == turns[2].prompt_len == 3
        assert [t.think_time_s for t in turns] == [0.0, 0.0, 0.0]  # the next turn goes at once, as SGLang's


def test_shared_prefix_turns_wait_their_own_think_time() -> None:
    cfg = WorkloadConfig(
        dataset_name="generated-shared-prefix", gsp_num_turns=2, gsp_turn_think_time_s=0.5, **SMALL_GSP
    )
    chains = by_chain(RequestGenerator().generate_requests(cfg))
    assert all([t.think_time_s for t in turns] == [0.0, 0.5] for turns in chains.values())
    saved = WorkloadConfig.model_validate(cfg.model_dump(mode="json"))  # config.yaml holds every field
    assert saved == cfg


def test_sharegpt_sessions_replay_every_turn_and_fill_num_prompts(tmp_path: Path) -> None:
    rows = [
        {"conversations": [{"from": s, "value": f"{s} {i} {k} words"} for k in range(6) for s in ("human", "gpt")]}
        for i in range(2)
    ]
    rows[1]["conversations"].insert(0, {"from": "system", "value": "be brief"})  # not a user turn
    path = tmp_path / "chats.json"
    path.write_text(json.dumps(rows))
    cfg = WorkloadConfig(
        dataset_name="sharegpt", dataset_path=path, sharegpt_sessions=True, num_prompts=15, routing_key_by="session"
    )
    chains = by_chain(RequestGenerator().generate_requests(cfg))
    assert sorted(len(t) for t in chains.values()) == [3, 6, 6]  # two conversations, then one repeated and cut
    for chain_id, turns in chains.items():
        assert [t.turn for t in turns] == list(range(len(turns)))
        assert all(t.routing_key == f"session-{chain_id}" for t in turns)
        assert [t.collect_output for t in turns] == [True] * (len(turns) - 1) + [False]
        assert all(t.output_len == 4 for t in turns)  # the recorded answer's length


@pytest.mark.parametrize("distribution", ["fixed", "exponential", "uniform"])
def test_think_times_are_seeded_with_the_configured_mean(distribution: str) -> None:
    cfg = WorkloadConfig(
        dataset_name="multi-turn",
        multi_turn_num_conversations=200,
        multi_turn_turns=5,
        multi_turn_user_len=2,
        multi_turn_think_time_s=2.0,
        think_time_distribution=distribution,
        request_rate=100,
    )
    first = RequestGenerator(seed=3).generate_requests(cfg)
    assert [r.think_time_s for r in first] == [r.think_time_s for r in RequestGenerator(seed=3).generate_requests(cfg)]
    thinks = [r.think_time_s for r in first if r.extends_previous]
    assert len(thinks) == 800 and all(r.think_time_s == 0 for r in first if not r.extends_previous)
    mean = sum(thinks) / len(thinks)
    assert (mean == 2.0) if distribution == "fixed" else (1.7 < mean < 2.3 and len(set(thinks)) == 800)
    if distribution == "uniform":
        assert min(thinks) >= 0 and max(thinks) <= 4.0


def test_sessions_start_on_the_arrival_process() -> None:
    cfg = WorkloadConfig(
        dataset_name="multi-turn",
        multi_turn_num_conversations=50,
        multi_turn_turns=2,
        multi_turn_user_len=2,
        request_rate=10,
    )
    requests = RequestGenerator().generate_requests(cfg)
    starts = sorted(turns[0].arrival_offset_s for turns in by_chain(requests).values())
    open_loop = RequestGenerator().arrival_offsets(50, 10.0)
    assert starts == pytest.approx(open_loop)


def test_virtual_users_take_every_nth_request_and_join_over_the_ramp() -> None:
    cfg = WorkloadConfig(
        virtual_users=4,
        num_prompts=10,
        ramp_up_s=2.0,
        virtual_user_think_time_s=0.5,
        routing_key_by="session",
        random_input_len=4,
        random_output_len=4,
    )
    requests = RequestGenerator().generate_requests(cfg)
    chains = by_chain(requests)
    assert {u: [int(r.request_id[4:]) for r in reqs] for u, reqs in chains.items()} == {
        0: [0, 4, 8],
        1: [1, 5, 9],
        2: [2, 6],
        3: [3, 7],
    }
    assert [chains[u][0].arrival_offset_s for u in range(4)] == [0.0, 0.5, 1.0, 1.5]
    assert all(r.think_time_s == (0.5 if int(r.request_id[4:]) >= 4 else 0.0) for r in requests)
    assert all(r.routing_key == f"user-{r.chain_id}" and not r.extends_previous for r in requests)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"virtual_users": 5, "request_rate": 3.0}, "virtual_users: each user sends when"),
        ({"virtual_users": 500}, "virtual_users: 500 users for 200 requests"),
        ({"virtual_users": 5, "duration_s": 3.0}, "duration_s: a virtual-user load is sized by num_prompts"),
        ({"virtual_user_think_time_s": 1.0}, "virtual_user_think_time_s: needs virtual_users"),
        ({"virtual_users": 2, "dataset_name": "multi-turn"}, "virtual_users: multi-turn sessions already"),
        ({"sharegpt_sessions": True}, "sharegpt_sessions: only for dataset_name='sharegpt'"),
        ({"gsp_num_turns": 2}, "gsp_num_turns: only for dataset_name='generated-shared-prefix'"),
        ({"routing_key_by": "session"}, "routing_key_by: 'session' needs sessions"),
        ({"routing_key_by": "group"}, "routing_key_by: 'group' needs a dataset with groups"),
        (
            {"dataset_name": "generated-shared-prefix", "gsp_group_distribution": "zipf", "gsp_num_turns": 3},
            "num_prompts: 200 requests are not whole conversations of gsp_num_turns=3",
        ),
        ({"think_time_distribution": "normal"}, "think_time_distribution"),
        ({"gsp_turn_think_time_s": 1.0}, "gsp_turn_think_time_s: only for shared-prefix conversations"),
        (
            {"dataset_name": "generated-shared-prefix", "gsp_num_turns": 2, "multi_turn_think_time_s": 2.0},
            "multi_turn_think_time_s: shared-prefix turns wait gsp_turn_think_time_s",
        ),
    ],
)
def test_bad_closed_loop_fields_name_the_field_and_the_fix(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkloadConfig(**fields)
