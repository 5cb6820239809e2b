"""A simulated server that cannot bind its port is never mistaken for the server already listening there."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import web

from sglang_test_framework.config.server_config import ServerConfig
from sglang_test_framework.errors import ServerLaunchError
from sglang_test_framework.servers import manager as manager_module
from sglang_test_framework.servers.manager import ServerManager


async def _foreign_server() -> tuple[web.AppRunner, int]:
    """Any server answering 200 on /health_generate, without our worker id."""

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health_generate", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def test_a_sim_that_loses_its_port_fails_with_its_log_instead_of_using_the_other_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, port = await _foreign_server()
    # the race the pre-check cannot close: the port looks free, then someone else holds it
    monkeypatch.setattr(manager_module, "port_is_free", lambda host, port: True)
    try:
        manager = ServerManager(log_dir=tmp_path)
        config = ServerConfig(model_path="m", backend="sim", port=port, startup_timeout_s=60)
        with pytest.raises(ServerLaunchError, match="exited"):
            await manager.start_server(config)
        manager.stop_all()
    finally:
        await runner.cleanup()
