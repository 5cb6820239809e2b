"""What gateways read from the simulator (/v1/loads, /server_info, /model_info) and the API key's handling."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sglang_test_framework.sim.config import API_KEY_ENV
from tests.conftest import free_port, wait_http

KEY = "k3y-from-env-9f2c"
LOAD_CORE_KEYS = {
    "dp_rank",
    "num_running_reqs",
    "num_waiting_reqs",
    "num_waiting_uncached_tokens",
    "num_used_tokens",
    "num_total_tokens",
    "max_total_num_tokens",
    "max_running_requests",
    "token_usage",
    "gen_throughput",
    "cache_hit_rate",
    "utilization",
}


async def test_v1_loads_has_an_iso8601_timestamp_like_sglang(start_sim: Callable[..., Any]) -> None:
    sim = start_sim("--max-running-requests", "5")
    async with aiohttp.ClientSession() as s, s.get(sim.url + "/v1/loads?include=core,disagg,queues,memory") as r:
        assert r.status == 200
        body = await r.json()
    assert isinstance(body["timestamp"], str)
    offset = datetime.fromisoformat(body["timestamp"]).utcoffset()
    assert offset is not None and offset.total_seconds() == 0  # UTC, as SGLang sends it
    (load,) = body["loads"]
    assert set(load) >= LOAD_CORE_KEYS
    assert load["max_running_requests"] == 5 and load["dp_rank"] == 0
    assert all(isinstance(v, int | float) for k, v in load.items() if k in LOAD_CORE_KEYS)


async def test_server_and_model_info_report_disaggregation_mode_null(start_sim: Callable[..., Any]) -> None:
    sim = start_sim()
    async with aiohttp.ClientSession() as s:
        for path in ("/server_info", "/get_server_info", "/model_info", "/get_model_info"):
            async with s.get(sim.url + path) as r:
                assert r.status == 200, path
                assert (await r.json())["disaggregation_mode"] == "null", path


def command_line(pid: int) -> bytes:
    """What `ps` shows of a process's argv."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.fixture
def sim_with_env_key(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log = tmp_path / "sim.log"
    argv = [sys.executable, "-m", "sglang_test_framework.sim", "--model-path", "m", "--port", str(port)]
    env = {**os.environ, API_KEY_ENV: KEY}
    with log.open("wb") as fh:
        proc = subprocess.Popen([*argv, "--log-level", "debug"], stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc=proc)
        yield url, proc, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_api_key_from_the_environment_is_required_and_never_shown(
    sim_with_env_key: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, proc, log = sim_with_env_key
    assert KEY.encode() not in command_line(proc.pid)
    body = {"text": "one two three", "sampling_params": {"max_new_tokens": 2}}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/generate", json=body) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        async with s.post(url + "/generate", json=body, headers=auth) as r:
            assert r.status == 200
        for path in ("/server_info", "/get_server_info", "/model_info", "/v1/loads"):
            async with s.get(url + path, headers=auth) as r:
                assert r.status == 200, path
                assert KEY not in await r.text(), path
        async with s.get(url + "/server_info", headers=auth) as r:
            assert (await r.json())["api_key"] == "***"
    assert KEY not in log.read_text()
