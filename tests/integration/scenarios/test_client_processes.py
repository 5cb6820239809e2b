"""The multi-process client against the real simulator: N worker processes send exactly what one
process sends, on one clock and one schedule; chains stay closed-loop; a killed worker yields failed
records (no hang); a cancelled run leaves no worker process. Relations and exact counts only."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.load.request_generator import RequestGenerator
from sglang_test_framework.records import Request, RequestRecord
from sglang_test_framework.scenarios.runner import (
    CLIENT_LOG_DIR,
    ExecutionOptions,
    LoadTarget,
    ScenarioRun,
    execute_workload,
)
from tests.conftest import MODEL, SimHandle

WORKER_MODULE = "sglang_test_framework.shards.worker"
OPTIONS = ExecutionOptions(progress=False, flush_after_warmup=False, collect_timeseries=False)


def _config(**overrides: object) -> WorkloadConfig:
    values: dict[str, object] = {
        "dataset_name": "random",
        "num_prompts": 36,
        "request_rate": 60.0,
        "random_input_len": 40,
        "random_output_len": 6,
        "random_range_ratio": 0.5,
        "seed": 11,
        "warmup_requests": 1,
    }
    values.update(overrides)
    return WorkloadConfig.model_validate(values)


def _workers() -> list[psutil.Process]:
    """This test process's client worker processes still alive (zombies excluded)."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if WORKER_MODULE in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.Error:
            continue
    return alive


def _run(
    sim: SimHandle, out: Path, cfg: WorkloadConfig, requests: list[Request]
) -> tuple[list[RequestRecord], ScenarioRun]:
    run = ScenarioRun.start("node", out, cfg.model_dump(mode="json"))
    asyncio.run(execute_workload(cfg, requests, LoadTarget(base_url=sim.url, model=MODEL), run, OPTIONS))
    records = list(run.collector.records)
    run.collector.close()
    return records, run


async def _records_written(run: ScenarioRun, count: int) -> None:
    """Wait until the run's requests.jsonl holds ``count`` records (the collector offers no event)."""
    while len(run.collector.records) < count:  # noqa: ASYNC110 - polls the records file
        await asyncio.sleep(0.05)


@pytest.fixture
def sim(start_sim: Callable[..., SimHandle]) -> SimHandle:
    return start_sim("--max-running-requests", "64")


def test_n_processes_send_exactly_what_one_process_sends_on_one_clock(sim: SimHandle, tmp_path: Path) -> None:
    by_processes: dict[int, dict[str, RequestRecord]] = {}
    for processes in (1, 2, 3):
        cfg = _config(client_processes=processes)
        requests = RequestGenerator().generate_requests(cfg)
        records, run = _run(sim, tmp_path / f"p{processes}", cfg, requests)
        assert len(records) == len(requests) == 36
        by_id = {r.request_id: r for r in records}
        assert len(by_id) == 36 and all(r.success for r in records)
        by_processes[processes] = by_id

        # one clock, one schedule: every record is causally ordered, and scheduled_ns − offset is the
        # same start for every record, whichever process sent it
        offsets = {r.request_id: r.arrival_offset_s for r in requests}
        starts = {r.scheduled_ns - int(offsets[r.request_id] * 1e9) for r in records}
        assert len(starts) == 1
        for r in records:
            assert r.first_token_ns is not None and r.finish_ns is not None
            assert r.scheduled_ns <= r.arrival_ns <= r.send_ns <= r.first_token_ns <= r.finish_ns
        by_schedule = [r.request_id for r in sorted(records, key=lambda r: r.scheduled_ns)]
        assert by_schedule == [r.request_id for r in sorted(requests, key=lambda r: r.arrival_offset_s)]

        # the CPU of each process: one per worker (their requests add up) plus the driver's (0 requests)
        stats = run.collector.client_processes
        assert [p.index for p in stats] == list(range(processes + (processes > 1)))
        assert sum(p.requests for p in stats) == 36
        assert len({p.pid for p in stats}) == len(stats)
        if processes > 1:
            assert stats[-1].requests == 0 and stats[-1].pid == os.getpid()
            assert sorted(p.name for p in (tmp_path / f"p{processes}" / CLIENT_LOG_DIR).iterdir()) == [
                f"client-{i}.log" for i in range(processes)
            ]

    one = by_processes[1]
    for processes in (2, 3):
        many = by_processes[processes]
        assert set(many) == set(one)
        for rid, record in one.items():
            assert many[rid].output_tokens == record.output_tokens == record.expected_output_len
            assert many[rid].prompt_len == record.prompt_len
    # the server saw every request of every run with the prompt the client counted, sent before it arrived
    truth = sim.truth_rows(3 * 36, where=lambda row: not str(row["rid"]).startswith("warmup"))
    assert len(truth) == 3 * 36
    for row in truth:
        rid = str(row["rid"])
        assert row["prompt_tokens"] == one[rid].prompt_len
        assert row["completion_tokens"] == one[rid].output_tokens
    assert not _workers()


def test_chains_stay_closed_loop_across_processes(sim: SimHandle, tmp_path: Path) -> None:
    cfg = _config(client_processes=3, num_prompts=24)
    requests = RequestGenerator().generate_requests(cfg)
    for i, req in enumerate(sorted(requests, key=lambda r: r.arrival_offset_s)):
        req.chain_id = i % 4  # 4 chains of 6 requests, interleaved in arrival order
    records, run = _run(sim, tmp_path / "chains", cfg, requests)
    assert len(records) == 24 and all(r.success for r in records)
    assert sum(p.requests for p in run.collector.client_processes) == 24
    by_id = {r.request_id: r for r in records}
    for chain in range(4):
        ordered = [
            by_id[r.request_id] for r in sorted(requests, key=lambda r: r.arrival_offset_s) if r.chain_id == chain
        ]
        assert len(ordered) == 6 and all(r.chain_id == chain for r in ordered)
        for prev, nxt in itertools.pairwise(ordered):
            assert prev.finish_ns is not None and prev.finish_ns <= nxt.send_ns  # one process, one at a time


def test_multi_turn_sessions_hit_their_history_with_two_processes_as_with_one(
    start_sim: Callable[..., SimHandle], tmp_path: Path
) -> None:
    cfg = WorkloadConfig(
        dataset_name="multi-turn",
        seed=11,
        multi_turn_num_conversations=4,
        multi_turn_turns=3,
        multi_turn_user_len=12,
        multi_turn_assistant_len=5,
        multi_turn_think_time_s=0.02,
        request_rate=20.0,
        routing_key_by="session",
        warmup_requests=0,
    )
    requests = RequestGenerator().generate_requests(cfg)
    assert len(requests) == 12 and {r.chain_id for r in requests} == {0, 1, 2, 3}
    cached: dict[int, dict[str, int | None]] = {}
    for processes in (1, 2):
        sim = start_sim("--enable-cache-report")  # a fresh cache for each run
        run_cfg = cfg.model_copy(update={"client_processes": processes})
        records, run = _run(sim, tmp_path / f"mt{processes}", run_cfg, requests)
        assert len(records) == 12 and all(r.success for r in records), [r.error for r in records]
        assert len({p.index for p in run.collector.client_processes}) == processes + (processes > 1)
        by_id = {r.request_id: r for r in records}
        truth = {str(row["rid"]): row for row in sim.truth_rows(len(by_id))}
        assert set(truth) == set(by_id)
        for chain in range(4):
            turns = sorted((r for r in requests if r.chain_id == chain), key=lambda r: r.turn)
            assert len(turns) == 3
            for prev_req, cur_req in itertools.pairwise(turns):
                prev, cur = by_id[prev_req.request_id], by_id[cur_req.request_id]
                assert prev.finish_ns is not None and cur.send_ns >= prev.finish_ns + int(0.02 * 1e9)
                # the turn extends the previous prompt + answer, so the server's cache holds that history
                prev_len = prev.prompt_len + prev.output_tokens
                assert cur.prompt_len == prev_len + cfg.multi_turn_user_len
                assert cur.cached_tokens == truth[cur.request_id]["cached_tokens"]
                assert cur.cached_tokens is not None and prev_len - 1 <= cur.cached_tokens <= prev_len
        cached[processes] = {rid: r.cached_tokens for rid, r in by_id.items()}
    assert cached[2] == cached[1]
    assert not _workers()


def test_a_killed_worker_yields_failed_records_not_a_hang(sim: SimHandle, tmp_path: Path) -> None:
    cfg = _config(client_processes=2, num_prompts=40, request_rate=20.0)
    requests = RequestGenerator().generate_requests(cfg)
    run = ScenarioRun.start("node", tmp_path / "killed", cfg.model_dump(mode="json"))
    killed: list[int] = []

    async def main() -> None:
        task = asyncio.create_task(
            execute_workload(cfg, requests, LoadTarget(base_url=sim.url, model=MODEL), run, OPTIONS)
        )
        await _records_written(run, 4)  # the load is under way
        victim = min(_workers(), key=lambda p: p.pid)
        killed.append(victim.pid)
        victim.kill()
        await task

    asyncio.run(main())
    records = list(run.collector.records)
    run.collector.close()
    assert len(records) == 40 and len({r.request_id for r in records}) == 40
    failed = [r for r in records if not r.success]
    assert failed and all(r.error_type == "client" for r in failed)
    assert all(
        f"(pid {killed[0]}) was killed by SIGKILL before this request finished" in (r.error or "") for r in failed
    )
    assert len([r for r in records if r.success]) >= 20  # the other worker's 20 requests all succeeded
    assert [p.pid for p in run.collector.client_processes if p.pid == killed[0]] == []
    assert not _workers()


def test_cancelling_a_multi_process_run_records_in_flight_and_leaves_no_worker(sim: SimHandle, tmp_path: Path) -> None:
    cfg = _config(client_processes=2, num_prompts=200, request_rate=40.0)
    requests = RequestGenerator().generate_requests(cfg)
    run = ScenarioRun.start("node", tmp_path / "cancelled", cfg.model_dump(mode="json"))
    seen: list[int] = []

    async def main() -> None:
        task = asyncio.create_task(
            execute_workload(cfg, requests, LoadTarget(base_url=sim.url, model=MODEL), run, OPTIONS)
        )
        await _records_written(run, 6)
        seen.extend(p.pid for p in _workers())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    records = list(run.collector.records)
    run.collector.close()
    assert len(seen) == 2 and not _workers()
    assert len({r.request_id for r in records}) == len(records) < 200
    assert all(r.success or r.error_type == "cancelled" for r in records)
    # both workers reported their CPU before they stopped, and the driver its own
    assert sorted(p.index for p in run.collector.client_processes) == [0, 1, 2]


def test_ctrl_c_of_the_cli_leaves_no_worker_process(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    out = tmp_path / "cli"
    argv = [sys.executable, "-m", "sglang_test_framework.tests.node_test", "--backend", "sim", "--port", "0"]
    argv += ["--num-prompts", "400", "--request-rate", "40", "--random-input-len", "20", "--random-output-len", "4"]
    argv += ["--client-processes", "2", "--warmup-requests", "1", "--output-dir", str(out), "--no-write-plots", "-q"]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        jsonl = out / "requests.jsonl"
        deadline = time.monotonic() + 120
        while (not jsonl.exists() or len(jsonl.read_bytes().splitlines()) < 5) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
            time.sleep(0.1)
        workers = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if WORKER_MODULE in " ".join(p.cmdline())
        ]
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for worker in workers:
        assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    lines = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert len({row["request_id"] for row in lines}) == len(lines) >= 5
    assert all(row["success"] or row["error_type"] == "cancelled" for row in lines)


def test_a_worker_that_cannot_start_fails_the_run_naming_it(tmp_path: Path) -> None:
    from sglang_test_framework.errors import RunError
    from sglang_test_framework.shards.pool import LocalShardPool
    from sglang_test_framework.shards.runner import SenderSettings, ShardSpec

    bad = SenderSettings("http://127.0.0.1:9/generate", timeout_s=-1.0)  # the worker's sender refuses it
    specs = [ShardSpec(0, [Request("r0", "p", 1, 1)], bad), ShardSpec(1, [Request("r1", "p", 1, 1)], bad)]

    async def main() -> None:
        async with LocalShardPool(specs, tmp_path / "logs"):
            pytest.fail("the pool should not start")

    with pytest.raises(RunError, match=r"client process \d \(pid \d+\) exited with code 1 before it was ready") as err:
        asyncio.run(main())
    assert "timeout_s" in str(err.value)  # the tail of its log says why
    assert not _workers()
