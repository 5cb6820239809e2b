"""The simulator behaves like SGLang: relations over real HTTP, never timing constants."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.records import Request, RequestRecord
from sglang_test_framework.sim.tokenizer import SimpleTokenizer

TOK = SimpleTokenizer()


def words(n: int, offset: int = 0) -> str:
    return TOK.decode(range(offset, offset + n))


async def send_all(
    url: str, prompts: list[tuple[str, int]], delays_s: list[float] | None = None, api: str = "sglang"
) -> list[RequestRecord]:
    path = {"sglang": "/generate", "openai": "/v1/completions", "openai-chat": "/v1/chat/completions"}[api]
    async with RequestSender(model="m") as sender:

        async def one(i: int, prompt: str, out: int) -> RequestRecord:
            if delays_s:
                await asyncio.sleep(delays_s[i])
            req = Request(f"r{i}", prompt, TOK.count(prompt), out)
            return await sender.send_request(req, url + path, api)

        return list(await asyncio.gather(*(one(i, p, o) for i, (p, o) in enumerate(prompts))))


async def metrics(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        text = await r.text()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            out[smp.name] = out.get(smp.name, 0.0) + smp.value
    return out


async def test_ttft_grows_with_queueing_and_metrics_show_queue(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--max-running-requests", "2")
    light = await send_all(sim.url, [(words(200, i * 300), 20) for i in range(2)])

    async def sample_queue() -> float:
        await asyncio.sleep(0.15)
        return (await metrics(sim.url))["sglang:num_queue_reqs"]

    heavy_task = asyncio.create_task(send_all(sim.url, [(words(200, i * 300), 20) for i in range(12)]))
    queued = await sample_queue()
    heavy = await heavy_task
    assert all(r.success for r in light + heavy)
    assert queued > 0
    light_ttft = max(d.ttft_ms(r) or 0 for r in light)
    assert sorted(d.ttft_ms(r) or 0 for r in heavy)[-1] > 3 * light_ttft


async def test_shared_prefix_lowers_ttft_and_reports_cached_tokens(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    prefix = words(3000)
    first = await send_all(sim.url, [(prefix + " " + words(20, 5000), 4)])
    second = await send_all(sim.url, [(prefix + " " + words(20, 6000), 4)])
    assert first[0].cached_tokens == 0
    assert (second[0].cached_tokens or 0) >= 3000
    assert (d.ttft_ms(second[0]) or 0) < (d.ttft_ms(first[0]) or 0)


async def test_decode_step_time_grows_with_batch_size(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    alone = await send_all(sim.url, [(words(2000), 40)])
    crowd = await send_all(sim.url, [(words(2000, 3000 + 100 * i), 40) for i in range(48)])
    itl_alone = sorted(d.itl_ms(alone[0]))[len(d.itl_ms(alone[0])) // 2]
    itl_crowd = sorted(x for r in crowd for x in d.itl_ms(r))
    assert itl_crowd[len(itl_crowd) // 2] > itl_alone


async def test_long_prompt_mid_decode_stalls_other_streams(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    recs = await send_all(sim.url, [(words(50), 120), (words(8000, 9000), 2)], delays_s=[0.0, 0.3])
    gaps = d.itl_ms(recs[0])
    median = sorted(gaps)[len(gaps) // 2]
    assert max(gaps) > 5 * median  # the 8k-token prefill paused decoding


async def test_filling_kv_causes_retractions(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--max-total-tokens", "3000")
    recs = await send_all(sim.url, [(words(400, 500 * i), 300) for i in range(6)])
    assert all(r.success for r in recs)
    assert sum(r.num_retractions or 0 for r in recs) > 0
    assert (await metrics(sim.url))["sglang:num_retracted_requests_total"] > 0
    assert [r.output_tokens for r in recs] == [300] * 6


async def test_max_running_requests_is_never_exceeded(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--max-running-requests", "3")
    recs = await send_all(sim.url, [(words(100, 200 * i), 30) for i in range(10)])
    assert all(r.success for r in recs)
    rows = sim.truth_rows(len(recs))
    events = sorted([(int(r["admitted_ns"]), 1) for r in rows] + [(int(r["finish_ns"]), -1) for r in rows])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak <= 3


async def test_stream_layout_matches_bench_serving(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    body = {"text": words(10), "sampling_params": {"max_new_tokens": 5, "ignore_eos": True}, "stream": True}
    async with aiohttp.ClientSession() as s, s.post(sim.url + "/generate", json=body) as r:
        raw = await r.text()
    events = [e[len("data: ") :] for e in raw.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    texts = [c["text"] for c in chunks]
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))  # cumulative
    assert [c["meta_info"]["completion_tokens"] for c in chunks] == [1, 2, 3, 4, 5]
    assert chunks[-1]["meta_info"]["finish_reason"] == {"type": "length", "length": 5}
    rec = (await send_all(sim.url, [(words(10), 5)]))[0]
    assert rec.output_tokens == 5 and sum(rec.chunk_tokens) == 5


async def test_openai_streams_report_usage(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    for api in ("openai", "openai-chat"):
        rec = (await send_all(sim.url, [(words(30), 7)], api=api))[0]
        assert rec.success, rec.error
        assert rec.output_tokens == 7 and sum(rec.chunk_tokens) == 7


async def test_bad_requests_are_rejected_like_sglang(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--api-key", "secret")
    async with aiohttp.ClientSession() as s:
        async with s.post(sim.url + "/generate", json={"text": "a"}) as r:
            assert r.status == 401
        auth = {"Authorization": "Bearer secret"}
        async with s.get(sim.url + "/health") as r:
            assert r.status == 200
        async with s.post(
            sim.url + "/generate", headers=auth, json={"text": "a", "sampling_params": {"max_new_tokenz": 3}}
        ) as r:
            assert r.status == 400
        async with s.post(
            sim.url + "/generate",
            headers=auth,
            json={"text": "a", "junk_top_level": 1, "sampling_params": {"max_new_tokens": 2}},
        ) as r:
            assert r.status == 200
        async with s.get(sim.url + "/get_load", headers=auth) as r:
            loads = await r.json()
            assert loads[0]["num_tokens"] >= 0
