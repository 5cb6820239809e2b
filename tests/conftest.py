"""Shared fixtures and helpers: simulated servers as real subprocesses on free ports, small aiohttp
servers on loopback, the fields of a quiet simulated run. Test modules import the helpers with
``from conftest import …`` (tests/ is on sys.path: there is no __init__.py)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sglang_test_framework.records import RequestRecord

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
MS = 1_000_000


def streamed_record(
    rid: str, send_ns: int, chunk_ns: list[int], *, success: bool = True, **fields: Any
) -> RequestRecord:
    """A streamed request scheduled, arrived and sent at ``send_ns``, one token per chunk at ``chunk_ns``
    (the first is its first token), finished 1 ms after the last chunk; ``fields``: other RequestRecord
    fields (``prompt_len`` …)."""
    return RequestRecord(
        rid,
        scheduled_ns=send_ns,
        arrival_ns=send_ns,
        send_ns=send_ns,
        first_token_ns=chunk_ns[0],
        finish_ns=chunk_ns[-1] + MS,
        chunk_ns=chunk_ns,
        chunk_tokens=[1] * len(chunk_ns),
        output_tokens=len(chunk_ns),
        success=success,
        **fields,
    )


def sim_run_fields(output_dir: Path, **fields: Any) -> dict[str, Any]:
    """The fields of a quiet simulated run (``MODEL`` on the sim backend, results in ``output_dir``, no
    progress bar, no plots), then ``fields``: ``RoutingConfig(**sim_run_fields(tmp_path / "out",
    num_gpus=2))``."""
    return {
        "model_path": MODEL,
        "backend": "sim",
        "output_dir": output_dir,
        "progress": False,
        "write_plots": False,
        **fields,
    }


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate each process still running; kill one that has not exited 10 s later."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.asynccontextmanager
async def serving(app: web.Application, **runner_kw: Any) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the ``async with`` block: yields ``http://host:port``."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, **runner_kw)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


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

    def truth_rows(
        self, min_rows: int = 0, timeout_s: float = 30.0, where: Callable[[dict[str, object]], bool] | None = None
    ) -> list[dict[str, object]]:
        """The ground-truth rows (those ``where`` accepts); with ``min_rows``, waits (up to ``timeout_s``) until
        that many are written.

        The sim writes a request's row just after the last byte of its answer, so a client that has read
        the whole answer can be ahead of the row on a busy machine."""
        import json

        deadline = time.monotonic() + timeout_s
        while True:
            text = self.truth.read_text() if self.truth.exists() else ""
            rows = [json.loads(x) for x in text.splitlines() if x.strip()]
            rows = [row for row in rows if where is None or where(row)]
            if len(rows) >= min_rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def shared_traces_dir() -> Path:
    """The real traces of ``../shared/data/traces`` (tests that need them skip where they are absent):
    ``$SGLANG_TEST_SHARED_DIR``, else ``shared/`` beside the checkout, else ``/work/shared`` (a clone made
    elsewhere, e.g. by CI into a temporary directory, still finds the project's shared folder)."""
    import os

    candidates = [Path(p) for p in [os.environ.get("SGLANG_TEST_SHARED_DIR", "")] if p]
    candidates += [Path(__file__).resolve().parents[1].parent / "shared", Path("/work/shared")]
    for base in candidates:
        if (base / "data" / "traces").is_dir():
            return base / "data" / "traces"
    return candidates[0] / "data" / "traces"


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


def sim_handle(port: int, proc: subprocess.Popen[bytes], truth: Path, log: Path, *, wait: bool) -> SimHandle:
    """The handle of a simulator process serving on ``port``; with ``wait``, once its /health answers 200."""
    handle = SimHandle(f"http://127.0.0.1:{port}", port, proc, truth, log)
    if wait:
        wait_http(handle.url + "/health", proc=proc)
    return handle


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
        return sim_handle(port, proc, truth, log, wait=wait)

    yield start
    stop_processes(procs)
