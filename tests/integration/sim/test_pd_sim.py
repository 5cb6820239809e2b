"""PD disaggregation on the simulator: a prefill and a decode process rendezvous through the prefill's
bootstrap port (as SMG --pd-disaggregation drives them: the same body to both at once), and rooms that
never get their other half time out with SGLang's errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.conftest import SimHandle, free_port

LLAMA3_KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2  # MHA: 2 · layers · kv_heads · head_dim · bf16


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body) as resp:
        text = await resp.text()
        if resp.content_type == "text/event-stream":
            events = [json.loads(x[6:]) for x in text.split("\n\n") if x.startswith("data: {")]
            return resp.status, events
        return resp.status, json.loads(text)


def _both(prefill: SimHandle, decode: SimHandle, body: dict[str, Any]) -> list[tuple[int, Any]]:
    async def go() -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as s:
            return list(
                await asyncio.gather(
                    _post(s, prefill.url + "/generate", body),
                    _post(s, decode.url + "/generate", {**body, "stream": True}),
                )
            )

    return asyncio.run(go())


def _one(handle: SimHandle, body: dict[str, Any]) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s:
            return await _post(s, handle.url + "/generate", body)

    return asyncio.run(go())


def _get(handle: SimHandle, path: str) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as s, s.get(handle.url + path) as resp:
            return await resp.json() if path != "/metrics" else await resp.text()

    return asyncio.run(go())


def _only_row(handle: SimHandle) -> dict[str, Any]:
    rows = handle.truth_rows(1)
    assert len(rows) == 1
    return dict(rows[0])


def _pair(start_sim: Callable[..., SimHandle], *decode_args: str) -> tuple[SimHandle, SimHandle, int]:
    boot = free_port()
    prefill = start_sim(
        "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", str(boot), worker_id="P0"
    )
    decode = start_sim("--disaggregation-mode", "decode", *decode_args, worker_id="D0")
    return prefill, decode, boot


def test_prefill_then_transfer_then_decode(start_sim: Callable[..., SimHandle]) -> None:
    prefill, decode, boot = _pair(start_sim)
    body = {
        "input_ids": list(range(1, 801)),
        "sampling_params": {"max_new_tokens": 6},
        "rid": "r1",
        "bootstrap_host": "127.0.0.1",
        "bootstrap_port": boot,
        "bootstrap_room": 42,
    }
    (p_status, p_body), (d_status, d_events) = _both(prefill, decode, body)
    assert p_status == 200 and d_status == 200
    assert p_body["output_ids"] and len(p_body["output_ids"]) == 1  # the prefill samples one token
    final = d_events[-1]
    assert final["meta_info"]["completion_tokens"] == 6
    assert final["output_ids"][0] == p_body["output_ids"][0]  # the handoff token is the decode's first
    p_row, d_row = _only_row(prefill), _only_row(decode)
    assert p_row["role"] == "prefill" and d_row["role"] == "decode"
    assert p_row["bootstrap_room"] == d_row["bootstrap_room"] == 42 and d_row["prefill_worker_id"] == "P0"
    assert p_row["decode_worker_id"] == "D0"
    assert d_row["kv_transfer_bytes"] == 800 * LLAMA3_KV_BYTES_PER_TOKEN
    modelled_s = 0.5e-3 + 800 * LLAMA3_KV_BYTES_PER_TOKEN / (400e9 / 8)  # default link: 400 Gbit/s, 0.5 ms
    assert abs(d_row["kv_transfer_modelled_s"] - modelled_s) < 1e-9
    order = [
        "prefill_arrival_ns",
        "prefill_bootstrap_done_ns",
        "prefill_admitted_ns",
        "prefill_end_ns",
        "transfer_start_ns",
        "transfer_end_ns",
    ]
    stamps = [d_row[k] for k in order]
    assert stamps == sorted(stamps)
    assert d_row["prealloc_done_ns"] <= d_row["prefill_bootstrap_done_ns"]  # handshake after the prealloc
    assert d_row["transfer_end_ns"] <= d_row["admitted_ns"] < d_row["first_token_step_end_ns"] <= d_row["finish_ns"]
    assert d_row["prefill_chunks"] == [] and len(p_row["prefill_chunks"]) == 1
    assert d_row["completion_tokens"] == 6 and p_row["completion_tokens"] == 1
    info = _get(decode, "/server_info")
    assert info["disaggregation_mode"] == "decode"
    assert _get(prefill, "/server_info")["disaggregation_bootstrap_port"] == boot
    load = _get(decode, "/v1/loads")["loads"][0]
    assert load["disaggregation"]["mode"] == "decode" and load["num_used_tokens"] == 0
    metrics = _get(decode, "/metrics")
    for name in ("num_decode_prealloc_queue_reqs", "kv_transfer_latency_ms_count", "kv_transfer_speed_gb_s_sum"):
        assert f"sglang:{name}" in metrics
    assert 'engine_type="decode"' in metrics
    prefill_metrics = _get(prefill, "/metrics")
    assert "sglang:num_prefill_bootstrap_queue_reqs" in prefill_metrics
    assert "sglang:time_to_first_token_seconds_count" in prefill_metrics
    ttft_count = [x for x in prefill_metrics.splitlines() if x.startswith("sglang:time_to_first_token_seconds_count")]
    assert ttft_count and ttft_count[0].endswith(" 0")  # the prefill records no TTFT, like SGLang


def test_a_room_that_never_gets_its_prefill_times_out(start_sim: Callable[..., SimHandle]) -> None:
    prefill, decode, boot = _pair(start_sim, "--sim-pd-waiting-timeout-s", "0.5")
    body = {"text": "hello " * 50, "rid": "lonely", "bootstrap_host": "127.0.0.1", "bootstrap_port": boot}
    status, data = _one(decode, {**body, "bootstrap_room": 7})
    assert status == 500
    message = data["error"]["message"]
    assert message.startswith("Decode transfer failed for request rank=0 req.rid='lonely' req.bootstrap_room=7")
    assert "KVTransferError(bootstrap_room=7): Request 7 timed out after" in message
    assert message.endswith("in KVPoll.WaitingForInput")
    row = _only_row(decode)
    assert row["status"] == "transfer_failed" and row["error"] == message and row["completion_tokens"] == 0
    assert _get(decode, "/v1/loads")["loads"][0]["num_used_tokens"] == 0  # its preallocated KV was freed
    assert "sglang:num_transfer_failed_reqs_total" in _get(decode, "/metrics")
    assert prefill.proc.poll() is None


def test_a_prefill_whose_decode_never_comes_times_out_bootstrapping(start_sim: Callable[..., SimHandle]) -> None:
    boot = free_port()
    prefill = start_sim(
        "--disaggregation-mode",
        "prefill",
        "--disaggregation-bootstrap-port",
        str(boot),
        "--sim-pd-bootstrap-timeout-s",
        "0.5",
    )
    status, data = _one(prefill, {"text": "hi there", "rid": "p1", "bootstrap_room": 9, "bootstrap_port": boot})
    assert status == 500 and data["error"]["message"].endswith("in KVPoll.Bootstrapping")
    assert "Prefill bootstrap failed for request rank=0 req.rid='p1' req.bootstrap_room=9" in data["error"]["message"]
    row = _only_row(prefill)
    assert row["status"] == "bootstrap_failed" and row["role"] == "prefill"


def test_pd_servers_need_a_bootstrap_room(start_sim: Callable[..., SimHandle]) -> None:
    prefill, decode, _ = _pair(start_sim)
    for handle in (prefill, decode):
        status, data = _one(handle, {"text": "no room here"})
        assert status == 400 and "bootstrap_room is required" in data["error"]["message"]
