"""No negative durations: under queueing and retractions every ground-truth record and every meta_info the
simulator returns has arrival ≤ admission ≤ first token ≤ finish."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from sglang_test_framework.sim.tokenizer import SimpleTokenizer

TOK = SimpleTokenizer()
N_REQUESTS = 24
OUTPUT_TOKENS = 120


async def generate(session: aiohttp.ClientSession, url: str, i: int) -> list[dict[str, Any]]:
    """Send one /generate request (every other one streamed) after a stagger; return every meta_info."""
    await asyncio.sleep(0.015 * i)  # arrivals keep landing while steps run
    body = {
        "text": TOK.decode(range(i * 500, i * 500 + 300)),
        "sampling_params": {"max_new_tokens": OUTPUT_TOKENS, "ignore_eos": True},
        "stream": i % 2 == 0,
        "rid": f"r{i}",
    }
    async with session.post(url + "/generate", json=body) as resp:
        assert resp.status == 200
        if not body["stream"]:
            return [(await resp.json())["meta_info"]]
        raw = await resp.text()
    events = [e[len("data: ") :] for e in raw.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e)["meta_info"] for e in events[:-1]]


def check_meta(metas: list[dict[str, Any]]) -> None:
    counts = [m["completion_tokens"] for m in metas]
    assert counts == sorted(counts) and counts[-1] == OUTPUT_TOKENS
    for meta in metas:
        assert meta["queue_time"] >= 0, meta
    final = metas[-1]
    assert final["e2e_latency"] >= final["queue_time"] >= 0, final


def check_truth(row: dict[str, Any]) -> None:
    assert row["status"] == "ok" and row["completion_tokens"] == OUTPUT_TOKENS, row
    ends = [chunk["end_ns"] for chunk in row["prefill_chunks"]]
    assert ends == sorted(ends), row
    # the engine's modelled clock
    assert row["arrival_ns"] <= row["admitted_ns"] < ends[0] <= row["first_token_step_end_ns"], row
    assert row["first_token_step_end_ns"] <= row["finish_ns"] and ends[-1] <= row["finish_ns"], row
    # the socket writes never precede what they carry
    assert row["first_token_step_end_ns"] <= row["first_token_ns"] <= row["last_write_ns"], row
    assert row["finish_ns"] <= row["last_write_ns"], row


async def test_no_negative_durations_under_queueing_and_retractions(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--max-total-tokens", "1600", "--max-running-requests", "4", "--chunked-prefill-size", "128")
    async with aiohttp.ClientSession() as session:
        metas = await asyncio.gather(*(generate(session, sim.url, i) for i in range(N_REQUESTS)))
    for per_request in metas:
        check_meta(per_request)
    finals = [m[-1] for m in metas]
    assert sum(m["num_retractions"] for m in finals) > 0  # KV ran out: requests were retracted
    assert any(m["queue_time"] > 0 for m in finals)  # max-running-requests made requests wait

    rows = sim.truth_rows(N_REQUESTS)
    assert sorted(str(r["rid"]) for r in rows) == sorted(f"r{i}" for i in range(N_REQUESTS))
    for row in rows:
        check_truth(row)
    assert sum(int(r["retractions"]) for r in rows) == sum(m["num_retractions"] for m in finals)
