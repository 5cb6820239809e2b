"""No process we start survives us: after a normal run, after an exception inside the run, and after
SIGINT / SIGTERM to the process running the test."""

from __future__ import annotations

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
        model_path="meta-llama/Meta-Llama-3-8B-Instruct",
        backend="sim",
        port=0,
        server_id=marker,
        dataset_name="random",
        random_input_len=64,
        random_output_len=16,
        random_range_ratio=1.0,
        num_prompts=20,
        request_rate=50.0,
        warmup_requests=1,
        output_dir=tmp_path / "out",
        progress=False,
        write_plots=False,
    )
    values.update(kw)
    return NodeConfig(**values)  # type: ignore[arg-type]


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
