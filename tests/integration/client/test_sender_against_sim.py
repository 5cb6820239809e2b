"""The validating sender against the real simulator: well-formed responses of every API still succeed,
with the token counts the simulator's ground-truth log reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.load.dispatch import dispatch
from sglang_test_framework.records import Request, RequestRecord

PATHS = {"sglang": "/generate", "openai": "/v1/completions", "openai-chat": "/v1/chat/completions"}
COMBINATIONS = [(api, stream) for api in PATHS for stream in (True, False)]


@pytest.mark.timeout(120)
async def test_every_api_streaming_or_not_succeeds_with_the_true_token_counts(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--enable-cache-report")
    requests = [
        Request(f"r{i}", "one two three four five six", 6, 5 + i, arrival_offset_s=0.001 * i)
        for i in range(len(COMBINATIONS))
    ]
    async with RequestSender(model="m", idle_timeout_s=30.0) as sender:

        async def send(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            api, stream = COMBINATIONS[int(request.request_id[1:])]
            return await sender.send_request(request, sim.url + PATHS[api], api, stream, scheduled_ns, arrival_ns)

        records = await dispatch(requests, send, max_concurrency=3)

    assert len(records) == len(COMBINATIONS)
    truth = {str(row["completion_tokens"]): row for row in sim.truth_rows(len(records))}
    for record in records:
        i = int(record.request_id[1:])
        assert record.success, (COMBINATIONS[i], record.error)
        assert record.output_tokens == 5 + i == sum(record.chunk_tokens)
        assert str(record.output_tokens) in truth
        assert type(record.cached_tokens) is int and record.cached_tokens == truth[str(5 + i)]["cached_tokens"]
        api, stream = COMBINATIONS[i]
        assert (len(record.chunk_tokens) > 1) == stream
        if api == "sglang":
            assert record.server_e2e_latency_s is not None and record.num_retractions == 0
