"""How many streamed tokens/s one simulator process sustains, and what a step costs.

    python benchmarks/sim_throughput.py [--streams 256] [--tokens 400]

The simulator runs as its own process with ``--sim-slowdown 0.05`` (steps 20× faster than an H100,
so the modelled GPU is never the limit) and the client runs here, so the figure is the simulator's own
CPU-bound ceiling. Prints tokens/s, the simulator's CPU seconds per 1k tokens, and the in-process
step-loop cost per step at several batch sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import urllib.request

import aiohttp
import psutil

from sglang_test_framework.sim.engine import EngineConfig, SimEngine, SimRequest
from sglang_test_framework.sim.profiles import resolve_profile


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def stream_all(url: str, streams: int, tokens: int) -> int:
    async def one(session: aiohttp.ClientSession, i: int) -> int:
        body = {"text": f"benchmark prompt number {i}", "sampling_params": {"max_new_tokens": tokens}, "stream": True}
        got = 0
        async with session.post(url + "/generate", json=body) as resp:
            async for chunk in resp.content.iter_any():
                got += chunk.count(b"data: {")
        return got

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        return sum(await asyncio.gather(*(one(session, i) for i in range(streams))))


def http_benchmark(streams: int, tokens: int, stream_interval: int = 1) -> None:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "sglang_test_framework.sim",
        "--model-path",
        "llama-3-8b",
        "--port",
        str(port),
        "--sim-slowdown",
        "0.05",
        "--sim-jitter-cv",
        "0",
        "--max-running-requests",
        str(streams),
        "--stream-interval",
        str(stream_interval),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        sim = psutil.Process(proc.pid)
        cpu0 = sum(sim.cpu_times()[:2])
        t0 = time.monotonic()
        events = asyncio.run(stream_all(f"http://127.0.0.1:{port}", streams, tokens))
        wall = time.monotonic() - t0
        cpu = sum(sim.cpu_times()[:2]) - cpu0
        total = streams * tokens
        print(
            f"HTTP, --stream-interval {stream_interval}: {streams} streams x {tokens} tokens = {total} tokens "
            f"in {wall:.2f}s "
            f"-> {total / wall:,.0f} streamed tokens/s ({events} SSE events, "
            f"{total / max(events, 1):.2f} tokens/event)"
        )
        print(
            f"      simulator CPU {cpu:.2f}s ({cpu / wall:.0%} of one core) = {cpu / total * 1e6:.1f} us per token "
            f"-> {total / cpu:,.0f} tokens per simulator CPU-second"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def step_cost() -> None:
    profile = resolve_profile(None, "llama-3-8b", "H100-SXM", 1)
    for batch in (1, 64, 256, 1024):
        engine = SimEngine(profile, EngineConfig(max_running_requests=batch, max_total_tokens=10_000_000))
        for i in range(batch):
            engine.add_request(SimRequest(f"r{i}", [i, i + 1, i + 2], 10_000))
        t = 0
        while len(engine.running) < batch:  # admit everyone
            step = engine.next_step(t)
            assert step is not None
            engine.complete_step(step, t)
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            step = engine.next_step(t)
            assert step is not None
            engine.complete_step(step, t)
        per_step_us = (time.perf_counter() - t0) / n * 1e6
        print(f"step loop: batch {batch:5d}: {per_step_us:8.1f} us/step = {per_step_us / batch:.2f} us per request")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--streams", type=int, default=256)
    p.add_argument("--tokens", type=int, default=400)
    p.add_argument(
        "--stream-intervals",
        type=int,
        nargs="+",
        default=[1, 4],
        help="SGLang's --stream-interval: tokens per streamed chunk",
    )
    a = p.parse_args()
    step_cost()
    for interval in a.stream_intervals:
        http_benchmark(a.streams, a.tokens, interval)


if __name__ == "__main__":
    main()
