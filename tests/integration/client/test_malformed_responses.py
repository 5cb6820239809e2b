"""Crafted malformed responses over real HTTP, driven through dispatch() + RequestSender as a run does.

Every request gets exactly one record, each bad response fails with a cause naming the problem, the good
ones in the same run succeed, and the run returns.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.load.dispatch import DispatchStats, dispatch
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import Request, RequestRecord
from tests.conftest import serving

IDLE_S = 2.0  # the stalled responses never resume; the margin is for good responses on a loaded machine
PATHS = {"sglang": "/generate", "openai": "/v1/completions", "openai-chat": "/v1/chat/completions"}
Event = dict[str, Any]
Handler = Callable[[web.Request, asyncio.Event], Awaitable[web.StreamResponse]]


# --- well-formed responses (the shapes of sim/streams.py and SGLang) ----------------------------------


def usage(n: int, cached: Any = 1) -> Event:
    return {
        "prompt_tokens": 3,
        "completion_tokens": n,
        "total_tokens": 3 + n,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def gen_events(n: int = 3) -> list[Event]:
    """``/generate`` SSE events: cumulative text and meta_info."""
    events = []
    for i in range(1, n + 1):
        meta: Event = {
            "id": "x",
            "finish_reason": {"type": "length", "length": n} if i == n else None,
            "prompt_tokens": 3,
            "completion_tokens": i,
            "cached_tokens": 1,
            "num_retractions": 0,
        }
        if i == n:
            meta["e2e_latency"] = 0.01
        events.append({"text": " ".join(["w"] * i), "output_ids": list(range(i)), "meta_info": meta})
    return events


def cmp_events(n: int = 3) -> list[Event]:
    """``/v1/completions`` chunks with continuous usage, a finish chunk and a usage chunk."""
    events: list[Event] = [
        {"object": "text_completion", "choices": [{"index": 0, "text": " w", "finish_reason": None}], "usage": usage(i)}
        for i in range(1, n + 1)
    ]
    events.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}], "usage": usage(n)})
    events.append({"choices": [], "usage": usage(n)})
    return events


def chat_events(n: int = 3) -> list[Event]:
    """``/v1/chat/completions`` chunks: a role chunk, content deltas, a finish chunk, a usage chunk."""
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    events: list[Event] = [{"object": "chat.completion.chunk", "choices": [role], "usage": None}]
    for i in range(1, n + 1):
        events.append({"choices": [{"index": 0, "delta": {"content": " w"}, "finish_reason": None}], "usage": usage(i)})
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": usage(n)})
    events.append({"choices": [], "usage": usage(n)})
    return events


def body(api: str) -> Event:
    """A non-streaming response body."""
    if api == "sglang":
        return gen_events()[-1]
    if api == "openai":
        return {"choices": [{"index": 0, "text": "w w w", "finish_reason": "length"}], "usage": usage(3)}
    message = {"role": "assistant", "content": "w w w"}
    return {"choices": [{"index": 0, "message": message, "finish_reason": "length"}], "usage": usage(3)}


# --- how to corrupt them --------------------------------------------------------------------------------


def changed(events: list[Event], index: int, change: Callable[[Event], object]) -> list[Event]:
    out = copy.deepcopy(events)
    change(out[index])
    return out


def set_meta(**fields: Any) -> Callable[[Event], object]:
    return lambda event: event["meta_info"].update(fields)


def set_top(**fields: Any) -> Callable[[Event], object]:
    return lambda event: event.update(fields)


def set_choice(**fields: Any) -> Callable[[Event], object]:
    return lambda event: event["choices"][0].update(fields)


def sse(events: list[Event | bytes], done: bool = True) -> bytes:
    raw = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]
    return b"".join(b"data: " + r + b"\n\n" for r in raw) + (b"data: [DONE]\n\n" if done else b"")


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
# orjson decodes any depth (the standard json raised RecursionError): the event is then not an object.
DEEP_ERROR = "event is [[[[...]]]] (list), expected a JSON object"
BAD_UTF8 = b'{"text": "\xff\xfe", "meta_info": {"completion_tokens": 1}}'


# --- what the server does with a request ----------------------------------------------------------------


def send(payload: bytes, status: int = 200, content_type: str = "text/event-stream") -> Handler:
    async def handle(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        return web.Response(status=status, body=payload, content_type=content_type)

    return handle


def send_json(payload: Event | bytes) -> Handler:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return send(raw, content_type="application/json")


def stall_after(prefix: bytes | None) -> Handler:
    """Send the headers (unless ``prefix`` is None) and ``prefix``, then nothing until the test ends."""

    async def handle(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if prefix is not None:
            await resp.prepare(request)
            if prefix:
                await resp.write(prefix)
        await release.wait()
        raise web.HTTPGone  # the client is gone: nothing more to send

    return handle


def close_after(prefix: bytes | None) -> Handler:
    """Send the headers (unless ``prefix`` is None) and ``prefix``, then drop the connection."""

    async def handle(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        if prefix is not None:
            await resp.prepare(request)
            await resp.write(prefix)
        assert request.transport is not None
        request.transport.abort()
        raise web.HTTPGone

    return handle


@dataclass(frozen=True)
class Case:
    api: str
    stream: bool
    handler: Handler
    error: str | None = None  # None: must succeed; else a substring of the error
    error_type: str = "stream"
    kept_tokens: int | None = None  # tokens measured before a failure (nothing measured is lost)


def stalled(api: str, handler: Handler) -> Case:
    return Case(api, True, handler, f"idle timeout: nothing received for {IDLE_S:g}s", "timeout")


def http_500(api: str, stream: bool) -> Case:
    return Case(
        api, stream, send(b"internal boom", status=500, content_type="text/plain"), "HTTP 500: internal boom", "http"
    )


CASES: dict[str, Case] = {
    # /generate, streaming
    "gen_ok": Case("sglang", True, send(sse([*gen_events()]))),
    "gen_meta_list": Case(
        "sglang", True, send(sse([*changed(gen_events(), 1, set_top(meta_info=[]))])), "meta_info is [] (list)"
    ),
    "gen_meta_string": Case(
        "sglang", True, send(sse([*changed(gen_events(), 1, set_top(meta_info="abc"))])), "meta_info is 'abc' (str)"
    ),
    "gen_meta_null": Case(
        "sglang", True, send(sse([*changed(gen_events(), 0, set_top(meta_info=None))])), "meta_info is null"
    ),
    "gen_tokens_string": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 1, set_meta(completion_tokens="abc"))])),
        "stream: meta_info.completion_tokens is 'abc' (str), expected an int ≥ 0",
        kept_tokens=1,
    ),
    "gen_tokens_float": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 1, set_meta(completion_tokens=2.0))])),
        "meta_info.completion_tokens is 2.0 (float)",
    ),
    "gen_tokens_negative": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 1, set_meta(completion_tokens=-2))])),
        "meta_info.completion_tokens is -2 (int)",
    ),
    "gen_tokens_bool": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 0, set_meta(completion_tokens=True))])),
        "meta_info.completion_tokens is True (bool)",
    ),
    "gen_cached_string": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 2, set_meta(cached_tokens="1"))])),
        "meta_info.cached_tokens is '1' (str)",
    ),
    "gen_text_number": Case("sglang", True, send(sse([*changed(gen_events(), 1, set_top(text=5))])), "text is 5 (int)"),
    "gen_e2e_latency_string": Case(
        "sglang",
        True,
        send(sse([*changed(gen_events(), 2, set_meta(e2e_latency="0.1"))])),
        "meta_info.e2e_latency is '0.1' (str)",
        kept_tokens=3,
    ),
    "gen_not_an_object": Case("sglang", True, send(sse([b"[1, 2, 3]"])), "event is [1, 2, 3] (list)"),
    "gen_invalid_utf8": Case("sglang", True, send(sse([BAD_UTF8])), "UnicodeDecodeError"),
    "gen_invalid_json": Case("sglang", True, send(sse([gen_events()[0], b'{"text": '])), "JSONDecodeError"),
    "gen_deep_json": Case("sglang", True, send(sse([DEEP_JSON])), DEEP_ERROR),
    "gen_error_event": Case("sglang", True, send(sse([{"error": {"message": "KV cache full"}}])), "KV cache full"),
    "gen_no_done": Case("sglang", True, send(sse([*gen_events()], done=False)), "stream ended before [DONE]"),
    "gen_stall_mid_stream": stalled("sglang", stall_after(sse([gen_events()[0]], done=False))),
    "gen_stall_after_headers": stalled("sglang", stall_after(b"")),
    "gen_stall_before_headers": stalled("sglang", stall_after(None)),
    "gen_close_mid_stream": Case(
        "sglang", True, close_after(sse([gen_events()[0]], done=False)), "stream broken", kept_tokens=1
    ),
    "gen_close_before_headers": Case("sglang", True, close_after(None), "ServerDisconnectedError", "connection"),
    "gen_http_500": http_500("sglang", True),
    # /generate, one body
    "gen_body_ok": Case("sglang", False, send_json(body("sglang"))),
    "gen_body_meta_string": Case(
        "sglang", False, send_json({**body("sglang"), "meta_info": "x"}), "meta_info is 'x' (str)"
    ),
    "gen_body_deep_json": Case("sglang", False, send_json(DEEP_JSON), DEEP_ERROR),
    # /v1/completions, streaming
    "cmp_ok": Case("openai", True, send(sse([*cmp_events()]))),
    "cmp_choices_object": Case(
        "openai", True, send(sse([*changed(cmp_events(), 0, set_top(choices={"0": {}}))])), "choices is {'0': {}}"
    ),
    "cmp_text_number": Case(
        "openai", True, send(sse([*changed(cmp_events(), 1, set_choice(text=5))])), "choices[0].text is 5 (int)"
    ),
    "cmp_usage_string": Case(
        "openai", True, send(sse([*changed(cmp_events(), 1, set_top(usage="lots"))])), "usage is 'lots' (str)"
    ),
    "cmp_tokens_string": Case(
        "openai",
        True,
        send(sse([*changed(cmp_events(), 1, set_top(usage=usage(2) | {"completion_tokens": "2"}))])),
        "usage.completion_tokens is '2' (str)",
    ),
    "cmp_cached_string": Case(
        "openai",
        True,
        send(sse([*changed(cmp_events(), 4, set_top(usage=usage(3, cached="1")))])),
        "usage.prompt_tokens_details.cached_tokens is '1' (str)",
    ),
    "cmp_invalid_utf8": Case("openai", True, send(sse([BAD_UTF8])), "UnicodeDecodeError"),
    "cmp_stall_mid_stream": stalled("openai", stall_after(sse([cmp_events()[0]], done=False))),
    "cmp_http_500": http_500("openai", True),
    # /v1/completions, one body
    "cmp_body_ok": Case("openai", False, send_json(body("openai"))),
    "cmp_body_usage_list": Case("openai", False, send_json({**body("openai"), "usage": []}), "usage is [] (list)"),
    "cmp_body_choices_string": Case(
        "openai", False, send_json({**body("openai"), "choices": "w"}), "choices is 'w' (str)"
    ),
    "cmp_body_invalid_json": Case("openai", False, send_json(b"not json"), "JSONDecodeError"),
    "cmp_body_http_500": http_500("openai", False),
    # /v1/chat/completions, streaming
    "chat_ok": Case("openai-chat", True, send(sse([*chat_events()]))),
    "chat_delta_string": Case(
        "openai-chat",
        True,
        send(sse([*changed(chat_events(), 1, set_choice(delta="hi"))])),
        "choices[0].delta is 'hi' (str)",
    ),
    "chat_delta_list": Case(
        "openai-chat", True, send(sse([*changed(chat_events(), 2, set_choice(delta=[]))])), "choices[0].delta is []"
    ),
    "chat_content_number": Case(
        "openai-chat",
        True,
        send(sse([*changed(chat_events(), 1, set_choice(delta={"content": 7}))])),
        "choices[0].delta.content is 7 (int)",
    ),
    "chat_choice_string": Case(
        "openai-chat", True, send(sse([*changed(chat_events(), 1, set_top(choices=["x"]))])), "choices[0] is 'x' (str)"
    ),
    "chat_usage_list": Case(
        "openai-chat", True, send(sse([*changed(chat_events(), 5, set_top(usage=[1]))])), "usage is [1] (list)"
    ),
    "chat_usage_tokens_float": Case(
        "openai-chat",
        True,
        send(sse([*changed(chat_events(), 5, set_top(usage=usage(3) | {"completion_tokens": 3.0}))])),
        "usage.completion_tokens is 3.0 (float)",
    ),
    "chat_deep_json": Case("openai-chat", True, send(sse([chat_events()[0], DEEP_JSON])), DEEP_ERROR),
    "chat_close_mid_stream": Case(
        "openai-chat", True, close_after(sse([*chat_events()[:3]], done=False)), "stream broken", kept_tokens=2
    ),
    "chat_stall_mid_stream": stalled("openai-chat", stall_after(sse([*chat_events()[:2]], done=False))),
    "chat_http_500": http_500("openai-chat", True),
    # /v1/chat/completions, one body
    "chat_body_ok": Case("openai-chat", False, send_json(body("openai-chat"))),
    "chat_body_message_string": Case(
        "openai-chat",
        False,
        send_json({**body("openai-chat"), "choices": [{"message": "hi"}]}),
        "choices[0].message is 'hi' (str)",
    ),
    "chat_body_invalid_utf8": Case("openai-chat", False, send_json(BAD_UTF8), "UnicodeDecodeError"),
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Counter[str]]]:
    """Base URL of a server answering each request with ``CASES[X-Request-Id]``, and the hits per id."""
    release = asyncio.Event()
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.StreamResponse:
        rid = request.headers["X-Request-Id"]
        hits[rid] += 1
        case = CASES[rid]
        assert request.path == PATHS[case.api]
        await request.read()
        return await case.handler(request, release)

    app = web.Application()
    for path in PATHS.values():
        app.router.add_post(path, handle)
    async with serving(app) as url:
        try:
            yield url, hits
        finally:
            release.set()


async def run_cases(base_url: str, max_concurrency: int | None) -> tuple[list[RequestRecord], list[RequestRecord]]:
    requests = [Request(name, "one two three", 3, 3) for name in CASES]
    seen: list[RequestRecord] = []
    async with RequestSender(timeout_s=120.0, idle_timeout_s=IDLE_S, model="m") as sender:

        async def send_one(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            case = CASES[request.request_id]
            return await sender.send_request(
                request, base_url + PATHS[case.api], case.api, case.stream, scheduled_ns, arrival_ns
            )

        stats = DispatchStats()
        records = await dispatch(
            requests, send_one, max_concurrency=max_concurrency, on_record=seen.append, stats=stats
        )
    assert (stats.completed, stats.in_flight, stats.waiting) == (len(CASES), 0, 0)
    return records, seen


@pytest.mark.timeout(120)
@pytest.mark.parametrize("max_concurrency", [None, 8])
async def test_every_malformed_response_fails_with_its_cause_and_the_run_returns(
    server: tuple[str, Counter[str]], max_concurrency: int | None
) -> None:
    base_url, hits = server
    records, seen = await run_cases(base_url, max_concurrency)

    assert Counter(r.request_id for r in records) == Counter(list(CASES))  # exactly one record per request
    assert seen == records and hits == Counter(list(CASES))
    for record in records:
        case = CASES[record.request_id]
        assert record.api_type == case.api and record.url.endswith(PATHS[case.api])
        assert record.send_ns > 0 and record.finish_ns is not None and record.finish_ns >= record.send_ns
        if case.error is None:
            assert record.success, (record.request_id, record.error)
            assert record.error is None and record.error_type is None
            assert record.output_tokens == 3 and sum(record.chunk_tokens) == 3 and record.finish_reason == "length"
            assert type(record.cached_tokens) is int and record.cached_tokens == 1
            assert record.first_token_ns is not None and record.first_token_ns >= record.send_ns
        else:
            assert not record.success, record.request_id
            assert (record.request_id, record.error_type) == (record.request_id, case.error_type)
            assert record.error is not None and case.error in record.error, (record.request_id, record.error)
            if case.kept_tokens is not None:
                assert record.output_tokens == case.kept_tokens == sum(record.chunk_tokens)
        assert type(record.output_tokens) is int and all(type(n) is int and n > 0 for n in record.chunk_tokens)
        assert record.cached_tokens is None or type(record.cached_tokens) is int

    summary = summarize(records)  # a mistyped field used to crash here
    good = sum(case.error is None for case in CASES.values())
    assert (summary["completed"], summary["failed"]) == (good, len(CASES) - good)
    assert summary["total_output_tokens"] == 3 * good and summary["cache_hit_rate"] == pytest.approx(1 / 3)


@pytest.mark.timeout(120)
async def test_a_stream_that_keeps_trickling_hits_the_total_timeout() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: " + json.dumps(gen_events()[0]).encode() + b"\n\n")
        try:
            while True:  # keep-alive comments: never idle, never done
                await resp.write(b": keep-alive\n\n")
                await asyncio.sleep(0.02)
        except ConnectionResetError:  # the client gave up
            raise web.HTTPGone from None

    app = web.Application()
    app.router.add_post("/generate", trickle)
    async with serving(app) as url, RequestSender(timeout_s=1.0, idle_timeout_s=60.0) as sender:

        async def send_one(request: Request, scheduled_ns: int, arrival_ns: int) -> RequestRecord:
            return await sender.send_request(
                request, f"{url}/generate", scheduled_ns=scheduled_ns, arrival_ns=arrival_ns
            )

        [record] = await dispatch([Request("slow", "a", 1, 3)], send_one)
    assert not record.success and record.error_type == "timeout"
    assert record.error == "total timeout: no complete response within 1s (timeout_s)"
    assert record.output_tokens == 1 and record.chunk_tokens == [1]
