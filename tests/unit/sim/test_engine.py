"""The scheduler on a virtual clock: SGLang's rules, no sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.sim.engine import EngineConfig, SimEngine, SimRequest, StepResult
from sglang_test_framework.sim.profiles import load_profile, resolve_profile
from sglang_test_framework.sim.radix import RadixCache

PROFILE = resolve_profile(None, "meta-llama/Meta-Llama-3-8B", "H100-SXM", 1)


def engine(**kw: Any) -> SimEngine:
    cfg: dict[str, Any] = {"max_running_requests": 64, "max_total_tokens": 100_000, "chunked_prefill_size": 8192}
    cfg.update(kw)
    return SimEngine(PROFILE, EngineConfig(**cfg))


def run(e: SimEngine, limit: int = 100_000) -> list[StepResult]:
    t: int = 0
    steps: list[StepResult] = []
    while e.has_work() and len(steps) < limit:
        step = e.next_step(t)
        assert step is not None
        t += int(step.duration_s * 1e9)
        e.complete_step(step, t)
        steps.append(step)
    return steps


def test_profile_magnitudes() -> None:
    assert PROFILE.decode_time_s(1, 1024) * 1e3 == pytest.approx(7.0, rel=0.05)
    assert PROFILE.decode_time_s(64, 64 * 1024) * 1e3 == pytest.approx(10.6, rel=0.05)
    assert 30_000 < 8192 / PROFILE.prefill_time_s([8192], [0]) < 45_000
    assert 400_000 < PROFILE.kv_capacity_tokens(0.88) < 500_000
    tp2 = resolve_profile(None, "llama-3", "H100-SXM", 2)
    assert tp2.decode_time_s(64, 65536) < PROFILE.decode_time_s(64, 65536)
    a100 = resolve_profile(None, "meta-llama/Llama-2-7b-hf", "A100-80G", 1)
    assert a100.decode_time_s(1, 1024) * 1e3 == pytest.approx(10.0, rel=0.05)


def test_yaml_profile(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("model: Llama-3-8B\ngpu: A100-80G\nmbu: 0.5\nt_step_s: 0.002\n")
    p = load_profile(path)
    assert p.mbu == 0.5 and p.gpu.name == "A100-80G"
    path.write_text("mbux: 1\n")
    with pytest.raises(ValueError, match="mbux"):
        load_profile(path)


def test_prefill_first_chunking_and_decode_pause() -> None:
    e = engine(chunked_prefill_size=1000)
    e.add_request(SimRequest("a", list(range(100)), 20))
    steps = run(e, limit=3)
    assert [s.kind for s in steps] == ["prefill", "decode", "decode"]
    e.add_request(SimRequest("b", list(range(5000, 7500)), 5))
    steps = run(e)
    kinds = "".join(s.kind[0] for s in steps)
    assert kinds.startswith("ppp")  # 2500 tokens in three 1000-token chunks; decode of "a" paused meanwhile
    assert all(sum(s.chunks) <= 1000 for s in steps if s.kind == "prefill")


def test_max_running_requests_caps_the_batch() -> None:
    e = engine(max_running_requests=3)
    for i in range(10):
        e.add_request(SimRequest(f"r{i}", list(range(i * 100, i * 100 + 50)), 10))
    steps = run(e)
    assert max(len(s.batch) for s in steps if s.kind == "decode") <= 3
    assert e.max_running_seen <= 3


def test_kv_exhaustion_retracts_newest_and_all_finish() -> None:
    e = engine(max_total_tokens=2000)
    reqs = [SimRequest(f"r{i}", list(range(i * 1000, i * 1000 + 300)), 400) for i in range(5)]
    for r in reqs:
        e.add_request(r)
    run(e)
    assert e.counters["num_retracted_requests_total"] > 0
    assert all(len(r.output_ids) == 400 and r.finished for r in reqs)
    assert e.used_tokens <= 2000


def test_prefix_cache_hits_cost_no_prefill() -> None:
    e = engine()
    e.add_request(SimRequest("a", list(range(3000)), 2))
    first = run(e)[0]
    e.add_request(SimRequest("b", [*range(3000), 99999], 2))
    second = run(e)[0]
    assert second.cached_tokens == 3000 and second.new_tokens == 1
    assert second.duration_s < first.duration_s / 3


def test_lpm_prefers_cached_prefixes() -> None:
    e = engine(schedule_policy="lpm", max_running_requests=1)
    e.add_request(SimRequest("warm", list(range(500)), 1))
    run(e)
    e.add_request(SimRequest("cold", list(range(10_000, 10_500)), 1))
    e.add_request(SimRequest("hot", [*range(500), 7], 1))
    step = e.next_step(0)
    assert step is not None and step.batch[0].rid == "hot"


def test_radix_refcounts_and_lru_eviction() -> None:
    c = RadixCache()
    c.insert([1, 2, 3, 4])
    c.insert([1, 2, 9])
    matched, node = c.match_prefix([1, 2, 3, 4, 5])
    assert matched == 4 and c.total_size == 5
    c.lock(node)
    assert c.evict(100) == 1  # only the unreferenced [9] leaf can go
    c.unlock(node)
    assert c.evict(100) == 4 and c.total_size == 0


def test_without_radix_cache_running_requests_hold_their_kv() -> None:
    e = engine(max_total_tokens=2000, disable_radix_cache=True)
    reqs = [SimRequest(f"r{i}", list(range(i * 1000, i * 1000 + 300)), 400) for i in range(5)]
    for r in reqs:
        e.add_request(r)
    t = 0
    while e.has_work():
        step = e.next_step(t)
        assert step is not None
        t += int(step.duration_s * 1e9)
        e.complete_step(step, t)
        assert e.used_tokens <= 2000
        # every running request's prompt + generated tokens (bar the newest, not yet in KV) are held
        assert e.used_tokens >= sum(len(r.seq) - 1 for r in e.running)
    assert e.counters["num_retracted_requests_total"] > 0
    assert all(r.finished and len(r.output_ids) == 400 for r in reqs)
    assert e.used_tokens == 0 and e.cache.total_size == 0


def test_a_request_is_never_admitted_by_a_step_that_began_before_it_arrived() -> None:
    e = engine()
    e.add_request(SimRequest("early", list(range(100)), 50, arrival_ns=0))
    run(e, limit=3)
    late = SimRequest("late", list(range(1000, 1100)), 5, arrival_ns=10_000_000_000)
    e.add_request(late)
    step = e.next_step(9_000_000_000)  # the step begins before "late" arrived: decode only
    assert step is not None and step.kind == "decode" and late not in step.batch
    e.complete_step(step, 9_500_000_000)
    step = e.next_step(10_000_000_000)
    assert step is not None and step.kind == "prefill" and step.batch == [late]
    assert late.admitted_ns == late.arrival_ns


def test_lpm_orders_only_arrived_requests() -> None:
    e = engine(schedule_policy="lpm")
    e.add_request(SimRequest("warm", list(range(500)), 1))
    run(e)
    e.add_request(SimRequest("cold", list(range(10_000, 10_500)), 1, arrival_ns=5))
    e.add_request(SimRequest("hot-but-later", [*range(500), 7], 1, arrival_ns=50))
    step = e.next_step(10)
    assert step is not None and [r.rid for r in step.batch] == ["cold"]


def test_engine_timestamps_are_ordered_under_queueing_and_retraction() -> None:
    e = engine(max_total_tokens=1500, max_running_requests=3, chunked_prefill_size=256)
    reqs = [SimRequest(f"r{i}", list(range(i * 1000, i * 1000 + 400)), 300, arrival_ns=i * 1_000_000) for i in range(8)]
    pending = list(reqs)
    t = 0
    while pending or e.has_work():
        while pending and pending[0].arrival_ns <= t:
            e.add_request(pending.pop(0))
        step = e.next_step(t)
        if step is None:
            t = pending[0].arrival_ns
            continue
        t += int(step.duration_s * 1e9)
        e.complete_step(step, t)
    assert e.counters["num_retracted_requests_total"] > 0
    assert any(r.admitted_ns != r.arrival_ns for r in reqs)  # some waited in the queue
    for r in reqs:
        assert r.admitted_ns is not None and r.first_token_ns is not None and r.finish_ns is not None
        ends = [c["end_ns"] for c in r.prefill_chunks]
        assert r.arrival_ns <= r.admitted_ns < ends[0] <= r.first_token_ns <= r.finish_ns
        assert ends == sorted(ends) and ends[-1] <= r.finish_ns
