"""Acceptance: closed-loop conversations against the simulator, checked with its ground-truth log.

No turn reaches the server before the previous turn finished plus its think time, and each turn's prompt
is the previous prompt + the answer the server produced + the new user text, so the server's prefix
cache holds the whole history (cached tokens = previous prompt + previous answer, minus at most the
answer's last token, which SGLang does not cache either)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.dispatch import dispatch
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.records import Request, RequestRecord

PATHS = {"sglang": "/generate", "openai": "/v1/completions", "openai-chat": "/v1/chat/completions"}
THINK_S = 0.05


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("api_type", "stream"),
    [("sglang", True), ("openai", True), ("openai-chat", True), ("sglang", False), ("openai-chat", False)],
)
async def test_conversation_turns_wait_for_the_answer_and_extend_the_cached_history(
    api_type: str, stream: bool, start_sim: Callable[..., Any]
) -> None:
    sim = start_sim("--enable-cache-report")
    config = WorkloadConfig(
        dataset_name="multi-turn",
        multi_turn_num_conversations=3,
        multi_turn_turns=3,
        multi_turn_user_len=12,
        multi_turn_assistant_len=6,
        multi_turn_think_time_s=THINK_S,
        request_rate=20,
        api_type=api_type,
    )
    requests = RequestGenerator(seed=7).generate_requests(config)
    sent: dict[str, Request] = {}
    async with RequestSender(model="m", idle_timeout_s=30.0) as sender:

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            sent[request.request_id] = request
            return await sender.send_request(
                request, sim.url + PATHS[api_type], api_type, stream, scheduled_ns, arrival_ns
            )

        records = {r.request_id: r for r in await dispatch(requests, send)}

    assert len(records) == 9 and all(r.success for r in records.values()), [r.error for r in records.values()]
    truth = {str(row["rid"]): row for row in sim.truth_rows(len(records))}
    assert set(truth) == set(records)
    for conv in range(3):
        turns = sorted((r for r in requests if r.chain_id == conv), key=lambda r: r.turn)
        for prev_req, cur_req in itertools.pairwise(turns):
            prev, cur = records[prev_req.request_id], records[cur_req.request_id]
            prev_truth, cur_truth = truth[prev.request_id], truth[cur.request_id]
            # never before the previous answer finished (client and server clocks are one clock) + think
            assert prev.finish_ns is not None and cur.send_ns >= prev.finish_ns + int(THINK_S * 1e9)
            assert int(cur_truth["arrival_ns"]) >= int(prev_truth["finish_ns"]) + int(THINK_S * 1e9)
            # the prompt extends exactly the previous prompt + the server's answer
            answer = prev.output_text or ""
            assert answer and len(answer.split()) == prev.output_tokens == config.multi_turn_assistant_len
            if api_type == "sglang":  # the answer's token ids too (a session sending input_ids extends them)
                assert prev.output_ids is not None and len(prev.output_ids) == prev.output_tokens
            history = f"{sent[prev.request_id].prompt} {answer}"
            assert sent[cur.request_id].prompt == f"{history} {cur_req.prompt}"
            if api_type == "openai-chat":
                assert sent[cur.request_id].messages[-2] == {"role": "assistant", "content": answer}
            prev_len = int(prev_truth["prompt_tokens"]) + int(prev_truth["completion_tokens"])
            assert int(cur_truth["prompt_tokens"]) == cur.prompt_len == prev_len + config.multi_turn_user_len
            assert prev_len - 1 <= int(cur_truth["cached_tokens"]) <= prev_len
            assert cur.cached_tokens == cur_truth["cached_tokens"]


@pytest.mark.timeout(120)
async def test_virtual_users_keep_exactly_n_requests_at_the_server(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    users = 4
    config = WorkloadConfig(virtual_users=users, num_prompts=24, random_input_len=16, random_output_len=8)
    requests = RequestGenerator(seed=3).generate_requests(config)
    async with RequestSender(model="m", idle_timeout_s=30.0) as sender:

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(request, sim.url + "/generate", "sglang", True, scheduled_ns, arrival_ns)

        records = await dispatch(requests, send)

    assert len(records) == 24 and all(r.success for r in records)
    truth = {str(row["rid"]): row for row in sim.truth_rows(len(records))}
    events = sorted(
        [(int(row["arrival_ns"]), 1) for row in truth.values()]
        + [(int(row["finish_ns"]), -1) for row in truth.values()],
        key=lambda e: (e[0], e[1]),  # a finish before an arrival at the same instant
    )
    level, peak = 0, 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == users  # the loop keeps every user busy and never more than one request per user
    for user in range(users):
        mine = sorted((r for r in requests if r.chain_id == user), key=lambda r: r.arrival_offset_s)
        assert [int(r.request_id[4:]) % users for r in mine] == [user] * len(mine)
        for prev, cur in itertools.pairwise(mine):
            assert int(truth[cur.request_id]["arrival_ns"]) >= int(truth[prev.request_id]["finish_ns"])
