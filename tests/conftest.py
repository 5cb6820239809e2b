"""Shared fixtures: simulated servers as real subprocesses on free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SimHandle:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    truth: Path
    log: Path

    def truth_rows(self) -> list[dict[str, object]]:
        import json

        return [json.loads(x) for x in self.truth.read_text().splitlines() if x.strip()] if self.truth.exists() else []


def wait_http(url: str, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., SimHandle]]:
    """``start_sim("--max-running-requests", "4", wait=True)`` → a running simulator subprocess."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, wait: bool = True, worker_id: str | None = None) -> SimHandle:
        port = free_port()
        truth = tmp_path / f"truth_{port}.jsonl"
        log = tmp_path / f"sim_{port}.log"
        argv = [
            sys.executable,
            "-m",
            "sglang_test_framework.sim",
            "--model-path",
            MODEL,
            "--port",
            str(port),
            "--enable-metrics",
            "--sim-ground-truth-log",
            str(truth),
            "--sim-jitter-cv",
            "0",
            "--sim-worker-id",
            worker_id or f"sim-{port}",
            *args,
        ]
        with log.open("wb") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
        procs.append(proc)
        handle = SimHandle(f"http://127.0.0.1:{port}", port, proc, truth, log)
        if wait:
            wait_http(handle.url + "/health", proc=proc)
        return handle

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
