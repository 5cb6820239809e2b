"""Sticky sessions through the real router: closed-loop conversations with per-session routing keys
stay on one worker under SMG's ``manual`` policy, so every later turn hits the whole history in cache."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios.routing import RoutingTest

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


@pytest.mark.timeout(180)
def test_sessions_with_routing_keys_stay_on_one_worker(tmp_path: Path) -> None:
    pytest.importorskip("smg", reason="the manual (routing-key) policy needs the smg router")
    config = RoutingConfig(
        model_path=MODEL,
        backend="sim",
        num_gpus=3,
        routing_policy="manual",
        dataset_name="multi-turn",
        multi_turn_num_conversations=6,
        multi_turn_turns=3,
        multi_turn_user_len=16,
        multi_turn_assistant_len=8,
        multi_turn_think_time_s=0.02,
        request_rate=20.0,
        routing_key_by="session",
        warmup_requests=0,
        output_dir=tmp_path,
        progress=False,
    )
    results = RoutingTest(config).run()
    records = results.records
    assert len(records) == 18 and all(r.success for r in records)
    workers: dict[int | None, set[str | None]] = defaultdict(set)
    for record in records:
        workers[record.chain_id].add(record.worker_id)
    assert set(workers) == set(range(6)) and all(len(w) == 1 and None not in w for w in workers.values())
    for record in records:
        if record.turn > 0:  # the history (previous prompt + answer) is cached on the session's worker
            assert record.cached_tokens == record.prompt_len - config.multi_turn_user_len
