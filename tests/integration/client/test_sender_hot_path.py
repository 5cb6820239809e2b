"""The sender's cheaper hot path keeps its contract over real HTTP: ``routing_key`` goes out as
``X-SMG-Routing-Key``, the request body is the JSON of the payload, and what orjson refuses (a NaN
literal, an integer beyond 64 bits) is decoded the way the standard ``json`` module does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sglang_test_framework.client.payloads import dump_json, load_json
from sglang_test_framework.client.request_sender import ROUTING_KEY_HEADER, RequestSender
from sglang_test_framework.records import Request
from tests.conftest import serving


def _events(total: int, extra: bytes = b"") -> bytes:
    events = [
        b'{"text": "a", "meta_info": {"completion_tokens": %d, "cached_tokens": 0%s}}' % (k, extra)
        for k in range(1, total + 1)
    ]
    return b"".join(b"data: " + e + b"\n\n" for e in events) + b"data: [DONE]\n\n"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A /generate server streaming 3 tokens (``e2e_latency`` NaN when the prompt says so); it keeps
    each request's headers and body."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        seen.append({"headers": request.headers.copy(), "body": body})  # case-insensitive
        extra = b', "e2e_latency": NaN, "big": 123456789012345678901234567890' if body["text"] == "nan" else b""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_events(3, extra))
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/generate", handle)
    async with serving(app) as url:
        yield f"{url}/generate", seen


@pytest.mark.timeout(60)
async def test_routing_key_header_and_body(server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = server
    async with RequestSender(model="m") as sender:
        keyed = await sender.send_request(Request("k", "héllo", 1, 3, routing_key="session-7"), url)
        plain = await sender.send_request(Request("p", "hello", 1, 3), url)
    assert keyed.success and plain.success and keyed.output_tokens == plain.output_tokens == 3
    assert seen[0]["headers"][ROUTING_KEY_HEADER] == "session-7" and seen[0]["headers"]["X-Request-Id"] == "k"
    assert ROUTING_KEY_HEADER not in seen[1]["headers"]
    assert seen[0]["body"]["text"] == "héllo" and seen[0]["body"]["rid"] == "k"
    assert seen[0]["body"]["sampling_params"]["max_new_tokens"] == 3


@pytest.mark.timeout(60)
async def test_what_orjson_refuses_is_decoded_as_json_does(server: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = server
    async with RequestSender(model="m") as sender:
        record = await sender.send_request(Request("n", "nan", 1, 3), url)
    # json accepts the NaN literal and the huge integer; a NaN e2e_latency is then a mistyped field
    assert not record.success and record.error_type == "stream" and record.output_tokens == 3
    assert record.error == "stream: meta_info.e2e_latency is nan (float), expected a number of seconds ≥ 0"


def test_dump_and_load_fall_back_to_the_standard_library() -> None:
    assert load_json(b'{"a": NaN, "b": 18446744073709551616}')["b"] == 2**64
    assert json.loads(dump_json({1: 2**70})) == {"1": 2**70}  # non-string keys and big integers: json's way
    assert dump_json({"t": "é"}) == '{"t":"é"}'.encode()
    with pytest.raises(UnicodeDecodeError):
        load_json(b'{"t": "\xff"}')
