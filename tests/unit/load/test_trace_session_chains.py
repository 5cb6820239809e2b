"""A generic trace's ``session_id`` rows: open loop by default, closed-loop chains with
``trace_sessions="closed"`` (think time = the trace's gap on the replay's time scale, or fixed)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.traces import read_trace

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "traces" / "session_sample.jsonl"


def _config(**kw: object) -> WorkloadConfig:
    return WorkloadConfig(dataset_name="trace", dataset_path=SAMPLE, trace_block_size=64, **kw)


def test_sample_is_what_its_generator_writes(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_session_sample", SAMPLE.with_name("make_session_sample.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [json.loads(line) for line in SAMPLE.read_text().splitlines()] == module.rows()


def test_open_sessions_are_not_chained() -> None:
    requests = RequestGenerator(seed=1).generate_requests(_config())
    assert len(requests) == 32
    assert all(r.chain_id is None and r.routing_key is None for r in requests)
    assert len({r.group_id for r in requests}) == 8  # one group per session_id


@pytest.mark.parametrize("think_s", [None, 0.25])
def test_closed_sessions_chain_their_turns(think_s: float | None) -> None:
    speedup = 4.0
    cfg = _config(trace_sessions="closed", trace_speedup=speedup, routing_key_by="session", trace_think_time_s=think_s)
    assert cfg.num_prompts == 32
    requests = RequestGenerator(seed=1).generate_requests(cfg)
    rows = read_trace(SAMPLE, block_size=64).rows
    by_session: dict[str | None, list[int]] = {}
    for i, row in enumerate(rows):
        by_session.setdefault(row.session_id, []).append(i)
    assert len(by_session) == 8
    for turns in by_session.values():
        chain = [requests[i] for i in turns]  # requests keep the trace's time order
        assert len({r.chain_id for r in chain}) == 1 and chain[0].chain_id is not None
        assert len({r.routing_key for r in chain}) == 1 and chain[0].routing_key == f"session-{chain[0].chain_id}"
        assert chain[0].think_time_s == 0.0
        assert not any(r.extends_previous for r in chain)  # the trace's own prompts, exact input_length
        assert [r.prompt_len for r in chain] == [rows[i].input_length for i in turns]
        for (a, ra), (b, rb) in itertools.pairwise(zip(turns, chain, strict=True)):
            gap_s = (rows[b].timestamp_ns - rows[a].timestamp_ns) / 1e9 / speedup
            assert rb.think_time_s == pytest.approx(gap_s if think_s is None else think_s)
            assert rb.arrival_offset_s > ra.arrival_offset_s
    assert len({r.chain_id for r in requests}) == 8
