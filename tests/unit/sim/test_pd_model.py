"""PD on the simulator without sockets: KV bytes per token (MHA, MLA, TP), the link model, the decode's
KV preallocation and the prebuilt (no prefill forward) admission, the bootstrap fields of a body."""

from __future__ import annotations

from typing import Any

import pytest

from sglang_test_framework.sim.engine import EngineConfig, SimEngine, SimRequest
from sglang_test_framework.sim.pd import Bootstrap, bootstrap_fields, kv_link
from sglang_test_framework.sim.profiles import MODELS, ModelSpec, resolve_profile

PROFILE = resolve_profile(None, "meta-llama/Meta-Llama-3-8B", "H100-SXM", 1)
DEEPSEEK_V3_KV = ModelSpec(
    "DeepSeek-V3", 61, 7168, 128, 128, 37e9, 0.9e9, 163840, kv_lora_rank=512, qk_rope_head_dim=64
)


def test_kv_bytes_per_token_mha_and_mla() -> None:
    assert MODELS["Llama-3-8B"].kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 131_072
    assert MODELS["Llama-2-7B"].kv_bytes_per_token == 524_288
    assert DEEPSEEK_V3_KV.kv_bytes_per_token == 61 * (512 + 64) * 2 == 70_272


def test_link_splits_mha_heads_over_tp_ranks_but_not_the_mla_latent() -> None:
    llama = MODELS["Llama-3-8B"]
    one = kv_link(llama, 1, 400.0, 0.5)
    two = kv_link(llama, 2, 400.0, 0.5)
    assert one.bytes_per_rank_token == 131_072 and two.bytes_per_rank_token == 65_536
    assert two.bytes_per_token == one.bytes_per_token  # the same KV moves, over twice the links
    assert kv_link(llama, 16, 400.0, 0.0).bytes_per_rank_token == 2 * 32 * 1 * 128 * 2  # 8 heads: replicated
    mla = kv_link(DEEPSEEK_V3_KV, 8, 400.0, 0.0)
    assert mla.bytes_per_rank_token == mla.bytes_per_token == 70_272
    # 4,096 tokens of Llama-3-8B at 400 Gbit/s (50 GB/s): 0.537 GB → 10.7 ms, plus the latency
    assert one.transfer_s(4096) == pytest.approx(0.5e-3 + 4096 * 131_072 / 50e9)
    assert one.busy_s(4096) == pytest.approx(4096 * 131_072 / 50e9)


def _engine(**kw: Any) -> SimEngine:
    cfg: dict[str, Any] = {"max_running_requests": 2, "max_total_tokens": 1000, "disable_radix_cache": True}
    cfg.update(kw)
    return SimEngine(PROFILE, EngineConfig(**cfg))


def test_prealloc_respects_kv_pool_and_running_limit() -> None:
    e = _engine()
    a, b, c = (SimRequest(r, list(range(400)), 200) for r in "abc")
    assert e.try_prealloc(a) and e.used_tokens == 400
    assert e.try_prealloc(b) is False  # 400 + 200 × ratio does not fit beside a's KV and output reservation
    e.release_prealloc(a)
    assert e.used_tokens == 0 and e.try_prealloc(b)
    small = SimRequest("s", [1, 2], 1)
    assert e.try_prealloc(small)
    assert e.try_prealloc(c) is False  # max_running_requests 2: b and small hold slots


def test_prebuilt_request_joins_at_kv_arrival_and_skips_prefill() -> None:
    e = _engine()
    req = SimRequest("r", list(range(300)), 3)
    assert e.try_prealloc(req)
    req.kv_ready_ns = 1_000
    e.add_request(req)
    assert e.has_work() and not e.waiting
    assert e.next_step(999) is None  # the KV has not arrived yet
    t = 1_000
    while e.has_work():
        step = e.next_step(t)
        assert step is not None and step.kind == "decode"
        t += int(step.duration_s * 1e9)
        e.complete_step(step, t)
    assert req.admitted_ns == 1_000 and req.prefill_chunks == [] and len(req.output_ids) == 3
    assert req.first_token_ns is not None and req.first_token_ns > 1_000
    assert e.used_tokens == 0 and not e.preallocated


def test_abort_frees_a_prebuilt_request() -> None:
    e = _engine()
    req = SimRequest("r", list(range(300)), 3, kv_ready_ns=10**18)
    assert e.try_prealloc(req)
    e.add_request(req)
    assert e.abort("r") == [req] and e.used_tokens == 0 and not e.has_work()


def test_bootstrap_fields() -> None:
    assert bootstrap_fields({"text": "x"}, 8998) is None
    assert bootstrap_fields({"bootstrap_room": 5, "bootstrap_host": "10.0.0.1", "bootstrap_port": 9000}, 8998) == (
        Bootstrap("10.0.0.1", 9000, 5)
    )
    assert bootstrap_fields({"bootstrap_room": 5, "bootstrap_port": None}, 8998) == Bootstrap("127.0.0.1", 8998, 5)
    assert isinstance(bootstrap_fields({"bootstrap_room": [1, 2]}, 8998), str)
    assert isinstance(bootstrap_fields({"bootstrap_room": "x"}, 8998), str)
