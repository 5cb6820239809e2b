"""A fleet of simulated servers in one process (``sglang-test-sim --workers N`` / ``--sim-fleet-spec``,
``sim_workers_per_process``): each worker is independent (id, cache, metrics, ground truth, faults) and
answers HTTP exactly like a worker of its own process.

The existing sim integration tests imported below run again here against a worker that shares its process
with a neighbour (this module's ``start_sim`` overrides the conftest one); their own modules run them
against one process per worker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.errors import ServerLaunchError
from sglang_test_framework.servers.manager import ServerManager
from sglang_test_framework.servers.sim_fleet import fleet_groups
from sglang_test_framework.sim.fleet import fleet_configs
from tests.conftest import MODEL, SimHandle, free_port, sim_handle, sim_run_fields, stop_processes, wait_http
from tests.integration.client.test_sender_against_sim import (
    test_every_api_streaming_or_not_succeeds_with_the_true_token_counts as test_fleet_every_api,
)
from tests.integration.sim.test_api import (
    test_server_and_model_info_report_disaggregation_mode_null as test_fleet_info,
)
from tests.integration.sim.test_api import test_v1_loads_has_an_iso8601_timestamp_like_sglang as test_fleet_loads
from tests.integration.sim.test_faults import run
from tests.integration.sim.test_faults import test_crash_after_seconds_mid_stream as test_fleet_crash_mid_stream
from tests.integration.sim.test_faults import test_fail_first_n as test_fleet_fail_first_n
from tests.integration.sim.test_faults import test_hang_is_a_client_timeout as test_fleet_hang
from tests.integration.sim.test_faults import test_health_fails_after_t as test_fleet_health_fails
from tests.integration.sim.test_faults import test_startup_delay_means_503_until_ready as test_fleet_startup_delay
from tests.integration.sim.test_sim_behaviour import (
    test_bad_requests_are_rejected_like_sglang as test_fleet_bad_requests,
)
from tests.integration.sim.test_sim_behaviour import (
    test_max_running_requests_is_never_exceeded as test_fleet_max_running,
)
from tests.integration.sim.test_sim_behaviour import (
    test_shared_prefix_lowers_ttft_and_reports_cached_tokens as test_fleet_shared_prefix,
)
from tests.integration.sim.test_sim_behaviour import test_stream_layout_matches_bench_serving as test_fleet_stream

__all__ = [
    "test_fleet_bad_requests",
    "test_fleet_crash_mid_stream",
    "test_fleet_every_api",
    "test_fleet_fail_first_n",
    "test_fleet_hang",
    "test_fleet_health_fails",
    "test_fleet_info",
    "test_fleet_loads",
    "test_fleet_max_running",
    "test_fleet_shared_prefix",
    "test_fleet_startup_delay",
    "test_fleet_stream",
]

BASE = ["--model-path", MODEL, "--enable-metrics", "--sim-jitter-cv", "0"]


def _popen(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "sglang_test_framework.sim", *argv], stdout=fh, stderr=subprocess.STDOUT
        )


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., SimHandle]]:
    """Like the conftest fixture, but the sim is worker 1 of a two-worker fleet process (worker 0, an idle
    neighbour with default flags, shares its process and event loop)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, wait: bool = True, worker_id: str | None = None) -> SimHandle:
        port, neighbour = free_port(), free_port()
        wid = worker_id or f"sim-{port}"
        truth = tmp_path / f"truth_{port}.jsonl"
        spec = [
            [*BASE, "--port", str(neighbour), "--sim-worker-id", f"neighbour-{neighbour}"],
            [*BASE, "--port", str(port), "--sim-ground-truth-log", str(truth), "--sim-worker-id", wid, *args],
        ]
        log = tmp_path / f"fleet_{port}.log"
        proc = _popen(["--sim-fleet-spec", json.dumps(spec)], log)
        procs.append(proc)
        return sim_handle(port, proc, truth, log, wait=wait)

    yield start
    stop_processes(procs)


@pytest.fixture
def fleet3(tmp_path: Path) -> Iterator[tuple[list[str], Path, subprocess.Popen[bytes]]]:
    """``sglang-test-sim --workers 3`` on consecutive ports; one ground-truth log per worker."""
    port = free_port()
    while any(not _port_free(port + i) for i in range(3)):
        port = free_port()
    truth = tmp_path / "truth.jsonl"
    argv = [*BASE, "--port", str(port), "--workers", "3", "--sim-worker-id", "f", "--sim-ground-truth-log", str(truth)]
    proc = _popen(argv, tmp_path / "fleet.log")
    urls = [f"http://127.0.0.1:{port + i}" for i in range(3)]
    try:
        for url in urls:
            wait_http(url + "/health", proc=proc)
        yield urls, truth, proc
    finally:
        stop_processes([proc])


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _generate(session: aiohttp.ClientSession, url: str, text: str) -> tuple[str | None, dict[str, Any]]:
    body = {"text": text, "sampling_params": {"max_new_tokens": 3}}
    async with session.post(url + "/generate", json=body) as resp:
        assert resp.status == 200
        return resp.headers.get("X-Worker-Id"), await resp.json()


async def test_fleet_workers_are_independent(fleet3: tuple[list[str], Path, subprocess.Popen[bytes]]) -> None:
    urls, truth, _ = fleet3
    prompt = " ".join(f"word{i}" for i in range(300))
    async with aiohttp.ClientSession() as session:
        first = [await _generate(session, urls[0], prompt + f" q{n}") for n in range(2)]
        other = await _generate(session, urls[1], prompt + " q9")
        for i, url in enumerate(urls):
            async with session.get(url + "/metrics") as resp:
                text = await resp.text()
            served = [line for line in text.splitlines() if line.startswith("sglang:num_requests_total")]
            assert served and float(served[0].rsplit(" ", 1)[1]) == [2, 1, 0][i]
    assert [wid for wid, _ in first] == ["f-0", "f-0"] and other[0] == "f-1"
    assert first[1][1]["meta_info"]["cached_tokens"] > 0  # worker 0's own cache
    assert other[1]["meta_info"]["cached_tokens"] == 0  # worker 1 never saw the prefix
    for i, rows in enumerate(
        [json.loads(x) for x in truth.with_name(f"truth.worker_{i}.jsonl").read_text().splitlines()]
        if truth.with_name(f"truth.worker_{i}.jsonl").exists()
        else []
        for i in range(3)
    ):
        assert len(rows) == [2, 1, 0][i] and all(r["worker_id"] == f"f-{i}" for r in rows)


async def test_a_crash_fault_kills_only_its_worker(start_sim: Callable[..., SimHandle]) -> None:
    sim = start_sim("--sim-crash-after-requests", "3")
    recs = await run(sim.url, 4)
    assert [r.success for r in recs[:2]] == [True, True]
    assert not recs[2].success and recs[2].error_type in ("connection", "stream")
    assert not recs[3].success and recs[3].error_type == "connection"  # nothing listens there any more
    assert sim.proc.poll() is None  # the fleet process and its other worker live on
    argv = sim.proc.args
    assert isinstance(argv, list)
    spec = json.loads(str(argv[-1]))
    neighbour = f"http://127.0.0.1:{spec[0][spec[0].index('--port') + 1]}"
    async with aiohttp.ClientSession() as session:
        wid, _ = await _generate(session, neighbour, "still here")
    assert wid is not None and wid.startswith("neighbour-")


def test_fleet_flags_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--workers", "0", *BASE], "--workers 0"),
        (["--sim-fleet-spec", "[1]"], "--sim-fleet-spec"),
        (["--sim-fleet-spec", json.dumps([[*BASE, "--port", "9"], [*BASE, "--port", "9"]])], "both listen on"),
    ):
        with pytest.raises(SystemExit) as exc:
            fleet_configs(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err
    configs = fleet_configs([*BASE, "--port", "40000", "--workers", "3", "--sim-worker-id", "f"])
    assert [(c.port, c.worker_id) for c in configs] == [(40000, "f-0"), (40001, "f-1"), (40002, "f-2")]


async def test_server_manager_serves_n_workers_from_ceil_n_over_k_processes(tmp_path: Path) -> None:
    configs = [
        ServerConfig(backend="sim", model_path=MODEL, port=0, server_id=f"w{i}", sim_workers_per_process=2)
        for i in range(5)
    ]
    assert [len(g) for g in fleet_groups(configs)] == [2, 2, 1]
    async with ServerManager(log_dir=tmp_path) as manager:
        servers = await manager.start_servers(configs)
        assert len({s.pid for s in servers}) == 3 and len({s.base_url for s in servers}) == 5
        async with aiohttp.ClientSession() as session:
            ids = [(await _generate(session, s.base_url, "hello"))[0] for s in servers]
        assert ids == [f"w{i}" for i in range(5)]
        with pytest.raises(ServerLaunchError, match="shares process"):
            manager.kill_server("w0")
        pids = [s.pid for s in servers]
    assert all(s.process is not None and not s.process.is_running() for s in servers), pids


def test_routing_config_refuses_failure_injection_in_shared_processes() -> None:
    with pytest.raises(ValueError, match="sim_workers_per_process=1"):
        RoutingConfig(
            model_path=MODEL, backend="sim", num_gpus=2, sim_workers_per_process=2, failure_schedule={1.0: [0]}
        )


async def test_routing_test_with_a_fleet_behind_smg(tmp_path: Path) -> None:
    pytest.importorskip("smg")
    from sglang_test_framework.scenarios.routing import RoutingTest

    cfg = RoutingConfig(
        **sim_run_fields(tmp_path / "rt"),
        num_gpus=4,
        sim_workers_per_process=4,
        routing_policy="round_robin",
        num_prompts=12,
        gsp_num_groups=3,
        gsp_prompts_per_group=4,
        gsp_system_prompt_len=128,
        gsp_question_len=16,
        gsp_output_len=8,
        request_rate=50,
        sim_ground_truth_log=tmp_path / "truth.jsonl",
    )
    res = await RoutingTest(cfg).run_async()
    assert res.summary["completed"] == 12 and res.summary["failed"] == 0
    assert res.summary["router_attribution"]["mismatched"] == 0
    assert res.per_worker is not None and sorted(res.per_worker["requests"].tolist()) == [3, 3, 3, 3]
    assert sorted(p.name for p in (tmp_path / "rt" / "server_logs").iterdir()) == ["router_0.log", "sim_fleet_0.log"]
    truth = [json.loads(x) for i in range(4) for x in (tmp_path / f"truth.worker_{i}.jsonl").read_text().splitlines()]
    assert len(truth) >= 12  # warm-up requests are in the ground truth too
