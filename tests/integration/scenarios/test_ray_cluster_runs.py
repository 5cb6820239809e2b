"""Servers and client shards on a real (local, multi-node) Ray cluster: one cluster for the module, 2 Ray
nodes on this machine with 2 GPUs declared each, all Ray traffic on loopback. Sim workers are placed as
Ray actors over both nodes, driven behind the real router, killed and restarted through Ray; the
client's shards run on both nodes with their clocks measured; the results have the form of a local
run's; nothing (actor, sim process, raylet) is left running, also after SIGINT or SIGKILL of a driver
process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import sim_run_fields

# With this, Ray binds and dials 127.0.0.1 (the only network these machines have) instead of the
# interface address. Ray reads it once, on import: the cluster's processes and the driver subprocesses
# inherit it; in this process Ray may have been imported already, so its constant is set too.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="needs the ray extra: pip install '.[ray]'")
ray._private.ray_constants.ENABLE_RAY_CLUSTER = False

from ray.cluster_utils import Cluster  # noqa: E402

from sglang_test_framework.config.routing_config import RoutingConfig  # noqa: E402
from sglang_test_framework.config.server_config import ServerConfig  # noqa: E402
from sglang_test_framework.errors import ServerLaunchError  # noqa: E402
from sglang_test_framework.scenarios.routing import RoutingTest  # noqa: E402
from sglang_test_framework.servers import ray_backend  # noqa: E402
from sglang_test_framework.servers.manager import ServerManager  # noqa: E402
from sglang_test_framework.servers.ray_backend import RayProcess  # noqa: E402
from sglang_test_framework.shards import ray_pool  # noqa: E402

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two Ray nodes (head + one), 4 CPUs and 2 GPUs declared each; stopped (and checked gone) afterwards."""
    node_args: dict[str, Any] = {"num_cpus": 4, "num_gpus": 2, "include_dashboard": False}
    ray_cluster: Any = Cluster(initialize_head=True, head_node_args=node_args)  # Any: Ray is partly untyped
    pids: list[int] = []
    try:
        ray_cluster.add_node(num_cpus=4, num_gpus=2)
        ray_cluster.wait_for_nodes()
        nodes = ray_cluster.list_all_nodes()
        pids = [p.process.pid for node in nodes for ps in node.all_processes.values() for p in ps]
        yield ray_cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        ray_cluster.shutdown()
    assert _wait_until(lambda: not [p for p in pids if _alive(p)]), "a raylet / GCS process outlived the cluster"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _procs_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_until(done: Any, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.2)
    return bool(done())


def _nothing_left(marker: str) -> bool:
    """No sim process of this test (its truth-log path is in argv) and no actor process of ours."""
    return not _procs_with(marker) and not _procs_with("ServerActor") and not _procs_with("ShardActor")


def _routing_config(tmp_path: Path, cluster: Cluster, **kw: Any) -> RoutingConfig:
    values: dict[str, Any] = dict(
        **sim_run_fields(tmp_path / "out"),
        num_gpus=4,
        request_rate=40.0,
        dataset_name="generated-shared-prefix",
        gsp_num_groups=4,
        gsp_prompts_per_group=6,
        gsp_system_prompt_len=256,
        gsp_question_len=16,
        gsp_output_len=8,
        warmup_requests=1,
        sim_ground_truth_log=tmp_path / "truth.jsonl",
        placement="ray",
        ray_address=cluster.address,
        ray_num_gpus=1,
    )
    values.update(kw)
    return RoutingConfig(**values)


def _environ(pid: int) -> dict[str, str]:
    return dict(psutil.Process(pid).environ())


async def test_servers_spread_over_nodes_with_ray_gpus_and_fail_over(tmp_path: Path, cluster: Cluster) -> None:
    configs = _routing_config(tmp_path, cluster).worker_server_configs()
    async with ServerManager(log_dir=tmp_path / "logs") as manager:
        servers = await manager.start_servers(configs)
        processes = [s.process for s in servers]
        assert all(isinstance(p, RayProcess) and p.placement is not None for p in processes)
        placements = [p.placement for p in processes if isinstance(p, RayProcess) and p.placement is not None]
        by_node: dict[str, list[str]] = {}
        for placement in placements:
            by_node.setdefault(placement.node_id, []).extend(placement.gpu_ids)
        assert sorted(sorted(gpus) for gpus in by_node.values()) == [["0", "1"], ["0", "1"]]  # 2 per node
        for server, placement in zip(servers, placements, strict=True):
            assert server.base_url == f"http://127.0.0.1:{placement.port}"
            assert server.pid == placement.pid  # same machine: the pid is usable for RSS sampling
            assert _environ(placement.pid)["CUDA_VISIBLE_DEVICES"] == ",".join(placement.gpu_ids)
        victim = servers[1]
        manager.kill_server(victim.server_id)
        assert not victim.is_alive() and manager.unexpected_exits() == []  # killed on purpose
        old_pid = victim.pid
        await manager.restart_server(victim.server_id)
        assert victim.is_alive() and victim.pid != old_pid
        assert victim.base_url == servers[1].base_url  # same node and port
        first_pid = servers[0].pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)  # a crash, not failure injection
        assert _wait_until(lambda: bool(manager.unexpected_exits()))
        assert [e.name for e in manager.unexpected_exits()] == [servers[0].server_id]
    assert _wait_until(lambda: _nothing_left(str(tmp_path)))
    assert {p.name for p in (tmp_path / "logs").iterdir()} == {f"worker_{i}.log" for i in range(4)}
    assert "ready to roll" in (tmp_path / "logs" / "worker_1.log").read_text()  # copied back from the node


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.parent.name != "client_logs"}


def test_routing_test_on_ray_matches_a_local_run_in_form(tmp_path: Path, cluster: Cluster) -> None:
    """4 workers over 2 nodes behind the real router, a worker killed and restarted, the client's 2 shards
    on 2 nodes; then the same test with everything local (2 client processes): same files, same keys."""
    failures = {"failure_schedule": {0.2: [1], 0.3: []}, "request_rate": 6.0}  # 4 s: the restart is within
    ray_cfg = _routing_config(tmp_path / "ray", cluster, client_nodes=2, **failures)
    ray_results = RoutingTest(ray_cfg).run()
    summary = ray_results.summary
    facts = {k: summary.get(k) for k in ("status", "completed", "failed", "errors_by_type", "server_exits")}
    assert summary["status"] == "completed", facts
    assert summary["completed"] + summary["failed"] == 24, facts  # requests on the killed worker may fail
    assert summary["server_exits"] == [], facts  # the kill was failure injection, not a crash
    events = ray_results.context["failure_events"]
    assert [(e["event"], e["worker_id"]) for e in events] == [("killed", "worker_1"), ("restarted", "worker_1")]
    shards = json.loads((ray_cfg.output_dir / "client_logs" / "clocks.json").read_text())["shards"]
    assert len({shard["node_id"] for shard in shards}) == 2  # one shard on each node
    assert all(shard["same_machine"] and shard["offset_ns"] == 0 for shard in shards)  # one machine: one clock
    processes = summary["client_check"]["processes"]
    assert [p["requests"] for p in processes] == [12, 12, 0], processes  # 2 shards, then the driver
    local_cfg = ray_cfg.model_copy(
        update={
            "placement": "local",
            "ray_address": None,
            "ray_num_gpus": None,
            "client_nodes": None,
            "client_processes": 2,
            "output_dir": tmp_path / "local",
        }
    )
    local_results = RoutingTest(local_cfg).run()
    assert set(summary) == set(local_results.summary), set(summary) ^ set(local_results.summary)
    ray_files, local_files = _files(ray_cfg.output_dir), _files(local_cfg.output_dir)
    assert ray_files == local_files, ray_files ^ local_files
    assert _wait_until(lambda: _nothing_left(str(tmp_path)))


def test_a_measured_clock_offset_holds_the_true_one(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards made to look remote measure their offset by pings; the clock is in fact shared, so the
    true offset 0 must lie within ± the reported uncertainty, and nothing measured is lost."""
    monkeypatch.setattr(ray_pool, "machine_id", lambda: "another-machine")
    local_servers: dict[str, Any] = {"placement": "local", "ray_address": None, "ray_num_gpus": None}
    cfg = _routing_config(tmp_path, cluster, num_gpus=2, client_nodes=2, **local_servers)
    results = RoutingTest(cfg).run()
    assert results.summary["completed"] == 24
    shards = results.summary["client_check"]["processes"][:2]
    assert all(s["clock_uncertainty_ns"] > 0 and abs(s["clock_offset_ns"]) <= s["clock_uncertainty_ns"] for s in shards)
    clocks = json.loads((cfg.output_dir / "client_logs" / "clocks.json").read_text())["shards"]
    assert [c["same_machine"] for c in clocks] == [False, False] and [c["samples"] for c in clocks] == [8, 8]
    assert _wait_until(lambda: _nothing_left(str(tmp_path)))


async def test_launch_failures_on_ray_fail_fast_with_the_cause(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No node fits: at once. A server that exits on its node: its log, read back from the node (the
    driver is made to look remote, so the server logs to a temporary file there), in the error."""
    monkeypatch.setattr(ray_backend, "machine_id", lambda: "another-machine")
    config = ServerConfig(model_path=MODEL, port=0, placement="ray", ray_address=cluster.address, ray_num_gpus=3)
    async with ServerManager(log_dir=tmp_path) as manager:
        with pytest.raises(ServerLaunchError, match="no Ray node has CPU=1, GPU=3"):
            await manager.start_server(config)
    broken = config.model_copy(update={"ray_num_gpus": 1, "extra_args": ["--no-such-sim-flag"]})
    async with ServerManager(log_dir=tmp_path / "logs") as manager:
        with pytest.raises(ServerLaunchError, match=r"exited with code 2 during startup(.|\n)*--no-such-sim-flag"):
            await manager.start_server(broken)
    assert "--no-such-sim-flag" in (tmp_path / "logs" / "server_0.log").read_text()  # copied from the node
    too_many = _routing_config(tmp_path, cluster, num_gpus=5).worker_server_configs()
    async with ServerManager(log_dir=tmp_path) as manager:
        with pytest.raises(ServerLaunchError, match="room for 4 servers"):
            await manager.start_servers(too_many)
    assert _wait_until(lambda: _nothing_left(str(tmp_path)))


def _driver_cli(tmp_path: Path, cluster: Cluster) -> list[str]:
    """The CLI running a long routing test with 2 workers and 2 client shards on Ray (`sglang-test routing`)."""
    return [
        sys.executable,
        "-m",
        "sglang_test_framework",
        "routing",
        "--model-path",
        MODEL,
        "--backend",
        "sim",
        "--num-gpus",
        "2",
        "--dataset-name",
        "random",
        "--num-prompts",
        "100000",
        "--random-input-len",
        "64",
        "--random-output-len",
        "200",
        "--request-rate",
        "10",
        "--warmup-requests",
        "1",
        "--no-progress",
        "--no-write-plots",
        "--output-dir",
        str(tmp_path / "out"),
        "--sim-ground-truth-log",
        str(tmp_path / "truth.jsonl"),
        "--placement",
        "ray",
        "--ray-address",
        cluster.address,
        "--ray-num-gpus",
        "1",
        "--client-nodes",
        "2",
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_nothing_outlives_a_stopped_or_killed_driver(tmp_path: Path, cluster: Cluster, sig: signal.Signals) -> None:
    marker = str(tmp_path / "truth")
    proc = subprocess.Popen(_driver_cli(tmp_path, cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    jsonl = tmp_path / "out" / "requests.jsonl"
    try:
        started = _wait_until(lambda: proc.poll() is not None or (jsonl.exists() and jsonl.stat().st_size > 0), 120)
        assert started and proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        sims = [p for p in _procs_with(marker) if p.pid != proc.pid]  # the driver's argv names the log too
        assert len(sims) == 2, "2 sim workers run under their Ray actors"
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), output
    assert _wait_until(lambda: _nothing_left(marker)), (
        f"left running: {[p.info['cmdline'] for p in _procs_with(marker) + _procs_with('Actor')]}"
    )
    if sig == signal.SIGINT:
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert summary["completed"] >= 1
