"""The streaming client's own HTTP/1.1 transport (client/http1.py) over real sockets: connections are
kept alive and reused, a server that closes them (after each response, or when idle) costs nothing but
new connections, an abandoned stream closes its connection, and a refused connection is a failed record."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.records import Request
from tests.conftest import serving


def _events(total: int) -> list[bytes]:
    events = [b'data: {"text": "a", "meta_info": {"completion_tokens": %d}}\n\n' % k for k in range(1, total + 1)]
    return [*events, b"data: [DONE]\n\n"]


@dataclass
class Server:
    url: str
    peers: list[tuple[str, int]] = field(default_factory=list)  # the client end of each request's connection
    close_each: bool = False
    stall: asyncio.Event = field(default_factory=asyncio.Event)
    gone: list[str] = field(default_factory=list)  # requests whose client went away mid-stream


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server("")

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        state.peers.append(request.transport.get_extra_info("peername"))
        headers = {"Content-Type": "text/event-stream"}
        if state.close_each:
            headers["Connection"] = "close"
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        stalls = request.headers["X-Request-Id"].startswith("stall")
        if stalls:
            await resp.write(_events(3)[0])
            await state.stall.wait()
        try:
            for event in _events(3)[stalls:]:
                await resp.write(event)
        except ConnectionResetError:  # the client closed the connection
            state.gone.append(request.headers["X-Request-Id"])
            raise web.HTTPGone from None
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/generate", handle)
    async with serving(app, keepalive_timeout=0.3) as url:
        state.url = f"{url}/generate"
        try:
            yield state
        finally:
            state.stall.set()


@pytest.mark.timeout(60)
async def test_connections_are_kept_alive_and_reused(server: Server) -> None:
    async with RequestSender(model="m") as sender:
        sequential = [await sender.send_request(Request(f"s{i}", "a", 1, 3), server.url) for i in range(5)]
        assert len(set(server.peers)) == 1  # one connection for five requests in turn
        concurrent = await asyncio.gather(
            *(sender.send_request(Request(f"c{i}", "a", 1, 3), server.url) for i in range(4))
        )
        again = await asyncio.gather(*(sender.send_request(Request(f"a{i}", "a", 1, 3), server.url) for i in range(4)))
    records = [*sequential, *concurrent, *again]
    assert all(r.success and r.output_tokens == 3 and r.chunk_tokens == [1, 1, 1] for r in records)
    assert all(r.http_status == 200 for r in records)
    assert len(set(server.peers[5:9])) == 4  # four at once need four connections
    assert set(server.peers[9:]) <= set(server.peers[:9])  # which are then reused


@pytest.mark.timeout(60)
async def test_connections_the_server_closes_are_replaced(server: Server) -> None:
    server.close_each = True
    async with RequestSender(model="m") as sender:
        closed = [await sender.send_request(Request(f"x{i}", "a", 1, 3), server.url) for i in range(3)]
        server.close_each = False
        kept = await sender.send_request(Request("k", "a", 1, 3), server.url)
        await asyncio.sleep(0.8)  # the server closes the idle keep-alive connection (keepalive_timeout 0.3 s)
        after_idle = await sender.send_request(Request("i", "a", 1, 3), server.url)
        assert sender._pool is not None and len(sender._pool._all) == 1  # closed connections are dropped
    assert all(r.success and r.output_tokens == 3 for r in [*closed, kept, after_idle])
    assert len(set(server.peers)) == 5  # one per Connection: close, one more, a new one after the idle close


@pytest.mark.timeout(60)
async def test_an_abandoned_stream_closes_its_connection_and_the_next_request_works(server: Server) -> None:
    async with RequestSender(model="m", timeout_s=0.5, idle_timeout_s=30.0) as sender:
        stalled = await sender.send_request(Request("stall-1", "a", 1, 3), server.url)
        server.stall.set()
        for _ in range(100):  # the server's next write finds the connection closed
            if server.gone:
                break
            await asyncio.sleep(0.02)
        fine = await sender.send_request(Request("ok", "a", 1, 3), server.url)
    assert not stalled.success and stalled.error_type == "timeout" and stalled.output_tokens == 1
    assert stalled.error == "total timeout: no complete response within 0.5s (timeout_s)"
    assert server.gone == ["stall-1"]
    assert fine.success and fine.output_tokens == 3 and server.peers[1] != server.peers[0]


@pytest.mark.timeout(60)
async def test_a_refused_connection_is_a_failed_record() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RequestSender(model="m") as sender:
        record = await sender.send_request(Request("r", "a", 1, 3), f"http://127.0.0.1:{port}/generate")
    assert not record.success and record.error_type == "connection" and record.http_status is None
    assert record.error is not None and record.error.startswith("ConnectionRefusedError")
