"""No process we start survives us: after a normal run, after an exception inside the run, and after
SIGINT / SIGTERM to the process running the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios import node as node_scenario
from sglang_test_framework.scenarios.node import NodeTest
from tests.conftest import sim_run_fields


def _procs_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []) and proc.pid != os.getpid():
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _wait_gone(marker: str, timeout_s: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in _procs_with(marker) if p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            return []
        time.sleep(0.2)
    return _procs_with(marker)


def _config(tmp_path: Path, marker: str, **kw: object) -> NodeConfig:
    values: dict[str, object] = dict(
        **sim_run_fields(tmp_path / "out"),
        port=0,
        server_id=marker,
        dataset_name="random",
        random_input_len=64,
        random_output_len=16,
        random_range_ratio=1.0,
        num_prompts=20,
        request_rate=50.0,
        warmup_requests=1,
    )
    values.update(kw)
    return NodeConfig(**values)


def test_no_process_left_after_a_normal_run(tmp_path: Path) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    results = NodeTest(_config(tmp_path, marker)).run()
    assert results.summary["completed"] == 20
    assert _wait_gone(marker) == []


def test_no_process_left_after_an_exception_inside_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"

    async def boom(*args: object, **kwargs: object) -> None:
        assert _procs_with(marker), "the server should be running when the run fails"
        raise RuntimeError("boom inside the run")

    monkeypatch.setattr(node_scenario, "execute_workload", boom)
    with pytest.raises(RuntimeError, match="boom inside the run"):
        NodeTest(_config(tmp_path, marker)).run()
    assert _wait_gone(marker) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_no_process_left_after_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        from sglang_test_framework.config.node_config import NodeConfig
        from sglang_test_framework.scenarios.node import NodeTest
        cfg = NodeConfig(model_path="meta-llama/Meta-Llama-3-8B-Instruct", backend="sim", port=0,
                         server_id="{marker}", dataset_name="random", random_input_len=64,
                         random_output_len=400, num_prompts=100000, request_rate=20.0, warmup_requests=1,
                         output_dir=r"{out}", progress=False, write_plots=False)
        NodeTest(cfg).run()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        jsonl = out / "requests.jsonl"
        while time.monotonic() < deadline and not (jsonl.exists() and jsonl.stat().st_size > 0):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.2)
        assert _procs_with(marker), "the simulated server should be running"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone(marker) == []
    assert jsonl.stat().st_size > 0, "records measured before the signal are kept"


def _cli_node(out: Path, marker: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sglang_test_framework.tests.node_test",
        "--backend",
        "sim",
        "--port",
        "0",
        "--server-id",
        marker,
        "--dataset-name",
        "random",
        "--random-input-len",
        "64",
        "--random-output-len",
        "400",
        "--num-prompts",
        "100000",
        "--request-rate",
        "20",
        "--warmup-requests",
        "1",
        "--output-dir",
        str(out),
        "--no-write-plots",
        "-q",
        *extra,
    ]


def _wait_for_records(proc: subprocess.Popen[bytes], jsonl: Path) -> None:
    deadline = time.monotonic() + 120
    while not (jsonl.exists() and jsonl.stat().st_size > 0):
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "no record was written"
        time.sleep(0.2)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("times", [1, 2])
def test_sigterm_stops_a_run_whose_sigint_is_ignored(tmp_path: Path, times: int) -> None:
    """A job started with `cmd &` from a script inherits SIGINT ignored: SIGTERM must still stop it
    cleanly (partial summary, status interrupted); a second SIGTERM kills everything at once."""
    marker = f"life-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cli_node(out, marker), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_ignore_sigint
    )
    try:
        _wait_for_records(proc, out / "requests.jsonl")
        for _ in range(times):
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 128 + signal.SIGTERM, output
    assert _wait_gone(marker) == []
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    assert records, "records measured before the signal are kept"
    if times == 1:
        assert _json(out / "run.json")["status"] == "interrupted"
        summary = _json(out / "summary.json")
        assert summary["status"] == "interrupted"
        assert summary["total_requests"] == len(records)
        assert "Node Test Results" in output, "the partial report is printed"


def test_a_run_killed_with_sigkill_leaves_its_config_status_and_readable_records(tmp_path: Path) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli_node(out, marker), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_records(proc, out / "requests.jsonl")
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone(marker) == [], "the kernel stops the server when its parent dies (PR_SET_PDEATHSIG)"
    assert _json(out / "run.json")["status"] == "running"
    assert "model_path" in (out / "config.yaml").read_text()
    assert "python" in _json(out / "versions.json")
    lines = (out / "requests.jsonl").read_text().splitlines()
    complete = [line for line in lines if line.endswith("}")]
    assert complete and all(isinstance(json.loads(line), dict) for line in complete)


def test_a_rerun_into_the_same_directory_sets_the_earlier_run_aside(tmp_path: Path) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    cfg = _config(tmp_path, marker, num_prompts=5)
    NodeTest(cfg).run()
    NodeTest(_config(tmp_path, marker, num_prompts=7)).run()
    runs = sorted(p for p in tmp_path.iterdir() if p.name.startswith("out"))
    assert runs[0].name == "out"
    assert len(runs) == 2
    counts = sorted(len((p / "requests.jsonl").read_text().splitlines()) for p in runs)
    assert counts == [5, 7]
    assert len((tmp_path / "out" / "requests.jsonl").read_text().splitlines()) == 7
    for run in runs:
        assert _json(run / "run.json")["status"] == "completed"


def test_a_server_that_dies_mid_run_is_reported_and_fails_the_command(tmp_path: Path) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    argv = _cli_node(out, marker)
    argv[argv.index("--num-prompts") + 1] = "40"
    argv[argv.index("--random-output-len") + 1] = "16"
    argv += ["--sim-args=--sim-crash-after-requests=10"]
    proc = subprocess.run(argv, capture_output=True, timeout=300)
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    assert f"{marker} exited during the run" in stderr
    summary = _json(out / "summary.json")
    exits = summary["server_exits"]
    assert isinstance(exits, list) and [e["name"] for e in exits] == [marker]
    assert exits[0]["exit_code"] != 0
    assert summary["total_requests"] == 40, "every request has a record, failed ones included"
    assert _json(out / "run.json")["server_exits"] == exits
    assert _wait_gone(marker) == []


def test_the_api_key_appears_in_no_file_log_or_output_of_a_run(tmp_path: Path) -> None:
    marker = f"life-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out"
    argv = _cli_node(out, marker, "-v", "--api-key", "secret-xyz", "--output-file", str(tmp_path / "results.json"))
    argv[argv.index("--num-prompts") + 1] = "6"
    argv[argv.index("--random-output-len") + 1] = "8"
    proc = subprocess.run(argv, capture_output=True, timeout=300)
    console = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, console
    assert _json(out / "summary.json")["completed"] == 6, "the server required the key and got it"
    assert "secret-xyz" not in console
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "server_0.log" or p.suffix == ".log" for p in written)
    leaks = [str(p) for p in written if b"secret-xyz" in p.read_bytes()]
    assert leaks == []
