"""The streaming client's own HTTP/1.1 response parser (client/http1.py), fed bytes directly: every
framing (chunked, Content-Length, until close) gives the same body however the bytes are split into
reads, and malformed responses fail with aiohttp's exception types."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from sglang_test_framework.client.http1 import (
    ERROR_BODY_BYTES,
    Exchange,
    HTTPProtocolError,
    encode_head,
    split_http_url,
)

EVENTS = [b'data: {"n": %d}\n\n' % i for i in range(1, 4)] + [b"data: [DONE]\n\n"]
BODY = b"".join(EVENTS)


class Sink:
    """Collects the body; done after ``[DONE]`` when ``stop_at_done``."""

    def __init__(self, stop_at_done: bool = False) -> None:
        self.reads: list[tuple[bytes, int]] = []
        self.ended_at: int | None = None
        self.stop_at_done = stop_at_done

    @property
    def body(self) -> bytes:
        return b"".join(data for data, _ in self.reads)

    def feed(self, data: bytes, now_ns: int) -> bool:
        self.reads.append((data, now_ns))
        return self.stop_at_done and b"[DONE]" in self.body

    def end(self, now_ns: int) -> None:
        self.ended_at = now_ns


def chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Worker-Id: w1\r\n"
RESPONSES = {
    "chunked": HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(EVENTS),
    "chunked_with_extension_and_trailer": HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%X;ext=1\r\n%s\r\n" % (len(e), e) for e in EVENTS)
    + b"0\r\nX-Trailer: t\r\n\r\n",
    "length": HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY,
}


def _exchange(sink: Sink) -> Exchange:
    return Exchange(sink, asyncio.get_running_loop().create_future())


@pytest.mark.parametrize("name", sorted(RESPONSES))
@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 64, 100_000])
async def test_every_framing_gives_the_body_however_the_reads_split_it(name: str, read_size: int) -> None:
    raw = RESPONSES[name]
    sink = Sink()
    exchange = _exchange(sink)
    for i, start in enumerate(range(0, len(raw), read_size)):
        exchange.feed(raw[start : start + read_size], i)
    assert exchange.complete and exchange.result.done() and exchange.result.exception() is None
    assert exchange.status == 200 and exchange.keep_alive and exchange.headers["x-worker-id"] == "w1"
    assert sink.body == BODY and sink.ended_at is not None
    # each read's bytes are stamped with that read's time
    assert all(stamp <= sink.ended_at for _, stamp in sink.reads)


async def test_one_chunk_per_read_is_passed_on_as_is_with_its_read_time() -> None:
    sink = Sink()
    exchange = _exchange(sink)
    exchange.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n", 0)
    for i, event in enumerate(EVENTS, start=1):
        exchange.feed(b"%x\r\n%s\r\n" % (len(event), event), i)
    exchange.feed(b"0\r\n\r\n", 9)
    assert sink.reads == [(event, i) for i, event in enumerate(EVENTS, start=1)]
    assert exchange.complete and sink.ended_at == 9


async def test_an_until_close_body_ends_at_the_close_and_a_framed_one_fails() -> None:
    sink = Sink()
    exchange = _exchange(sink)
    exchange.feed(b"HTTP/1.0 200 OK\r\n\r\n" + BODY, 1)
    assert not exchange.complete and not exchange.keep_alive
    exchange.connection_lost(2)
    assert exchange.complete and sink.body == BODY and sink.ended_at == 2 and exchange.result.done()

    torn = _exchange(Sink())
    torn.feed(RESPONSES["chunked"][:-20], 1)
    torn.connection_lost(2)
    with pytest.raises(aiohttp.ClientPayloadError, match="not completed"):
        torn.result.result()

    before_head = _exchange(Sink())
    before_head.feed(b"HTTP/1.1 200", 1)
    before_head.connection_lost(2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        before_head.result.result()


async def test_the_result_is_ready_at_done_before_the_message_ends() -> None:
    sink = Sink(stop_at_done=True)
    exchange = _exchange(sink)
    raw = RESPONSES["chunked"]
    exchange.feed(raw[: raw.index(b"0\r\n\r\n")], 1)  # everything but the last chunk
    assert exchange.result.done() and not exchange.complete  # the sender may go on; the connection waits
    exchange.feed(b"0\r\n\r\n", 2)
    assert exchange.complete and sink.ended_at is None  # the sink had all it needed already


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", HTTPProtocolError, "not an HTTP/1.x status line"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", HTTPProtocolError, "not an HTTP/1.x status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", HTTPProtocolError, "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", HTTPProtocolError, "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", HTTPProtocolError, "Content-Length"),
        (b"HTTP/1.1 100 Continue\r\n\r\n", HTTPProtocolError, "unexpected HTTP 100"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n", HTTPProtocolError, "Content-Encoding 'gzip'"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", aiohttp.ClientPayloadError, "chunk size"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", aiohttp.ClientPayloadError, "chunk size"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n", aiohttp.ClientPayloadError, "chunk size"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", aiohttp.ClientPayloadError, "no CRLF"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, aiohttp.ClientPayloadError, "too long"),
    ],
)
async def test_malformed_responses_raise_aiohttps_types(raw: bytes, error: type[Exception], match: str) -> None:
    exchange = _exchange(Sink())
    with pytest.raises(error, match=match):
        exchange.feed(raw, 1)


async def test_a_head_that_never_ends_is_refused() -> None:
    exchange = _exchange(Sink())
    with pytest.raises(HTTPProtocolError, match="longer than"):
        for i in range(100):
            exchange.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n", i)


async def test_an_error_status_keeps_the_start_of_its_body_not_the_sink() -> None:
    sink = Sink()
    short = _exchange(sink)
    short.feed(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nx-smg-error-code: queue_full\r\n\r\nbusy", 1)
    assert short.status == 503 and short.error_body == b"busy" and short.complete and short.keep_alive
    assert short.headers["x-smg-error-code"] == "queue_full" and sink.reads == []
    long = _exchange(Sink())
    long.feed(b"HTTP/1.1 500 Boom\r\nContent-Length: 100000\r\n\r\n" + b"e" * 3000, 1)
    assert long.result.done() and not long.complete and not long.keep_alive  # the rest is not read
    assert long.error_body == b"e" * ERROR_BODY_BYTES


async def test_connection_close_and_http_1_0_are_not_kept_alive() -> None:
    closing = _exchange(Sink())
    closing.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 1)
    assert closing.complete and not closing.keep_alive
    kept = _exchange(Sink())
    kept.feed(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 1)
    assert kept.complete and kept.keep_alive
    for extra in (RESPONSES["length"] + b"junk", RESPONSES["chunked"] + b"junk"):  # bytes after the message
        out_of_step = _exchange(Sink())
        out_of_step.feed(extra, 1)
        assert out_of_step.complete and not out_of_step.keep_alive


def test_request_head_and_url_split() -> None:
    head = encode_head("POST", "/generate", "127.0.0.1:30000", {"X-Request-Id": "r1"}, 12)
    assert head == (
        b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1:30000\r\nX-Request-Id: r1\r\nContent-Length: 12\r\n\r\n"
    )
    with pytest.raises(ValueError, match="line break"):
        encode_head("POST", "/", "h", {"X-Request-Id": "r1\r\nEvil: 1"}, 0)
    assert split_http_url("http://127.0.0.1:30000/generate") == ("127.0.0.1", 30000, "/generate", "127.0.0.1:30000")
    assert split_http_url("http://host/v1/completions?x=1") == ("host", 80, "/v1/completions?x=1", "host")
    assert split_http_url("http://host") == ("host", 80, "/", "host")
    for aiohttp_only in (
        "https://host/generate",
        "http://u:p@host/",
        "http://[::1]:80/",
        "http://h:99999/",
        "ftp://h/",
    ):
        assert split_http_url(aiohttp_only) is None
