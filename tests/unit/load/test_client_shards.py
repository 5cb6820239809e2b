"""Splitting a workload across client processes (load/shards.py): every request once, chains whole,
open-loop requests dealt round-robin in arrival order, the concurrency limit split exactly."""

from __future__ import annotations

import pytest

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.errors import ConfigError
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.load.shards import (
    DEFAULT_USERS_PER_PROCESS,
    auto_client_processes,
    partition_requests,
    sizing_load,
    split_concurrency,
    unit_count,
)
from sglang_test_framework.records import Request


def _req(i: int, offset_s: float, chain: int | None = None) -> Request:
    return Request(
        request_id=f"r{i}", prompt="p", prompt_len=1, output_len=1, arrival_offset_s=offset_s, chain_id=chain
    )


def _seeded(n: int = 50) -> list[Request]:
    cfg = WorkloadConfig(num_prompts=n, request_rate=100.0, random_input_len=8, random_output_len=4, seed=7)
    return RequestGenerator().generate_requests(cfg)


@pytest.mark.parametrize("processes", [1, 2, 3, 7])
def test_open_loop_is_dealt_round_robin_in_arrival_order(processes: int) -> None:
    requests = _seeded(50)
    ordered = sorted(requests, key=lambda r: r.arrival_offset_s)
    shards = partition_requests(list(reversed(requests)), processes)  # input order does not matter
    assert len(shards) == processes
    for i, shard in enumerate(shards):
        assert [r.request_id for r in shard] == [r.request_id for r in ordered[i::processes]]
    sizes = [len(s) for s in shards]
    assert sum(sizes) == 50 and max(sizes) - min(sizes) <= 1


def test_chains_stay_whole_and_balance_the_load() -> None:
    # chain 1: 4 requests, chain 2: 2, chain 3: 3, interleaved with 5 open-loop requests
    spec = [(0.0, 1), (0.1, None), (0.2, 2), (0.3, 1), (0.4, None), (0.5, 3), (0.6, 2), (0.7, 1)]
    spec += [(0.8, None), (0.9, 3), (1.0, 1), (1.1, None), (1.2, 3), (1.3, None)]
    requests = [_req(i, off, chain) for i, (off, chain) in enumerate(spec)]
    shards = partition_requests(requests, 2)
    owner = {r.request_id: i for i, shard in enumerate(shards) for r in shard}
    assert sorted(owner) == sorted(r.request_id for r in requests)  # every request exactly once
    assert sum(len(s) for s in shards) == len(requests)
    for chain in (1, 2, 3):
        assert len({owner[r.request_id] for r in requests if r.chain_id == chain}) == 1
    for shard in shards:
        offsets = [r.arrival_offset_s for r in shard]
        assert offsets == sorted(offsets)
    # greedy least-loaded walk: chain 1 (4) → 0, r1 → 1, chain 2 (2) → 1, r4 → 1, chain 3 (3) → ...
    assert owner["r0"] == 0 and owner["r1"] == 1 and owner["r2"] == 1
    assert abs(len(shards[0]) - len(shards[1])) <= 4


def test_more_processes_than_units_leaves_empty_shards() -> None:
    requests = [_req(0, 0.0, 5), _req(1, 0.5, 5), _req(2, 0.2)]
    assert unit_count(requests) == 2
    shards = partition_requests(requests, 4)
    assert [len(s) for s in shards] == [2, 1, 0, 0]
    with pytest.raises(ValueError, match="processes"):
        partition_requests(requests, 0)


def test_concurrency_split_adds_up() -> None:
    assert split_concurrency(None, 3) == [None, None, None]
    assert split_concurrency(10, 3) == [4, 3, 3]
    assert split_concurrency(3, 3) == [1, 1, 1]
    for limit in range(4, 40):
        shares = split_concurrency(limit, 4)
        assert sum(s or 0 for s in shares) == limit
    with pytest.raises(ValueError, match="max_concurrency=2"):
        split_concurrency(2, 3)


def test_auto_count_follows_the_rate_within_limits() -> None:
    requests = _seeded(50)
    assert auto_client_processes(float("inf"), requests, None, 8) == 1
    assert auto_client_processes(100.0, requests, None, 8) == 1
    assert auto_client_processes(401.0, requests, None, 8) == 2
    assert auto_client_processes(2000.0, requests, None, 8) == 5
    assert auto_client_processes(2000.0, requests, None, 2) == 2  # at most the CPU count
    assert auto_client_processes(2000.0, requests, 3, 8) == 3  # at most max_concurrency
    assert auto_client_processes(2000.0, requests[:2], None, 8) == 2  # at most the units


def test_sizing_load_is_the_rate_the_stage_peak_or_the_user_count() -> None:
    assert sizing_load(WorkloadConfig(request_rate=250.0)) == 250.0
    assert sizing_load(WorkloadConfig()) == float("inf")  # concurrency mode: one process
    # stages set the rate (request_rate is inf then): their peak sizes it, wherever it lies
    staged = WorkloadConfig.build(stages="ramp:100-900:2s,constant:300:1s")
    assert staged.request_rate == float("inf")
    assert sizing_load(staged) == 900.0
    requests = _seeded(50)
    assert auto_client_processes(sizing_load(staged), requests, None, 8) == 3
    # virtual users: one process per DEFAULT_USERS_PER_PROCESS users
    users = WorkloadConfig.build(virtual_users=DEFAULT_USERS_PER_PROCESS + 1, num_prompts=2000)
    assert auto_client_processes(sizing_load(users), requests, None, 8) == 2
    assert auto_client_processes(sizing_load(WorkloadConfig.build(virtual_users=4)), requests, None, 8) == 1


def test_config_rejects_more_processes_than_concurrency_slots() -> None:
    with pytest.raises(ConfigError, match="client_processes"):
        WorkloadConfig.build(client_processes=4, max_concurrency=2)
    assert WorkloadConfig(client_processes=2, max_concurrency=2).client_processes == 2
