"""RequestSender: sends one request over a pooled connection and records precise timings.

Streamed requests to ``http://`` URLs go over :mod:`.http1` (our own HTTP/1.1 protocol: each read is
parsed in the protocol's callback, the sending task wakes once per request); ``https://`` and
non-streaming requests over one aiohttp session. Every socket read is timestamped before any parsing.
Errors are stored on the record, never raised: any exception while sending or parsing (a malformed
field, invalid JSON or UTF-8, JSON nested too deep, a broken connection, a timeout) becomes a failed
record with a cause; only CancelledError propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from types import TracebackType
from typing import Any

import aiohttp

from ..http_api import auth_headers
from ..records import Request, RequestRecord
from .answers import AnswerCollector, collecting
from .http1 import ConnectionPool, Exchange, encode_head, split_http_url
from .payloads import (
    ChunkError,
    ChunkInfo,
    Extractor,
    build_payload,
    dump_json,
    extractor_for,
    load_json,
    server_timings,
)
from .sse import SSEParser

__all__ = ["RequestSender"]

WORKER_HEADER = "X-Worker-Id"
ROUTING_KEY_HEADER = "X-SMG-Routing-Key"
ROUTED_WORKER_HEADER = "x-smg-routed-worker-id"
"""SMG names the worker (its URL) it sent the request to."""
GATEWAY_ERROR_HEADER = "x-smg-error-code"
"""Set on errors SMG itself answered (admission 429, no worker…): error_type ``gateway``, not ``http``."""
CONNECT_TIMEOUT_S = 30.0
_ERROR_BODY_BYTES = 2048
# aiohttp >= 3.10 raises ConnectionTimeoutError for a connect timeout; 3.9 raises ServerTimeoutError for both.
_CONNECT_TIMEOUT_ERROR: type[Exception] = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError)


class _IdleTimeout(Exception):
    """Set on the response stream by :class:`_IdleWatchdog` when the server sent nothing for too long."""


class _Stream:
    """Accumulates chunk timings and token counts of one response."""

    __slots__ = (
        "cached",
        "chunk_ns",
        "chunk_tokens",
        "coalesced",
        "cumulative",
        "error",
        "finish_reason",
        "last_read_ns",
        "meta",
        "total",
    )

    def __init__(self, cumulative: bool = True) -> None:
        self.cumulative = cumulative  # every count is a running total (sglang meta_info)
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        self.coalesced = 0  # chunks with tokens read together with another in one socket read
        self.total = 0
        self.cached: int | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.meta: dict[str, Any] | None = None
        self.last_read_ns = 0

    def add(self, info: ChunkInfo, now_ns: int) -> None:
        if info.error is not None:
            self.error = info.error
            return
        total = info.total_tokens
        if total is not None and (self.cumulative or info.new_tokens):
            new = total - self.total
            self.total = total
        elif total is not None:  # usage-only chunk: fixes the total, is not a token event
            if total > self.total:
                self.total = total
            new = 0
        else:
            new = info.new_tokens
            self.total += new
        if new > 0:
            self.chunk_ns.append(now_ns)
            self.chunk_tokens.append(new)
        if info.cached_tokens is not None:
            self.cached = info.cached_tokens
        if info.finish_reason is not None:
            self.finish_reason = info.finish_reason
        if info.meta is not None:
            self.meta = info.meta


class _IdleWatchdog:
    """Fails a stream once the server sent nothing for ``idle_s``.

    aiohttp's ``sock_read`` bounds the wait for the response headers; this takes over from it once they
    are in, because ``sock_read`` cancels and re-creates a timer on every socket read. Here a chunk costs
    only the reader's ``last_read_ns`` stamp: one timer per request, re-armed when it fires early.
    """

    __slots__ = ("_bytes_seen", "_content", "_handle", "_idle_ns", "_loop", "_state")

    def __init__(self, resp: aiohttp.ClientResponse, state: _Stream, idle_s: float) -> None:
        connection = resp.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is not None:
            protocol.read_timeout = None
            protocol.start_timeout()  # with no read timeout set, this cancels aiohttp's pending timer
        self._loop = asyncio.get_running_loop()
        self._content = resp.content
        self._state = state
        self._idle_ns = int(idle_s * 1e9)
        self._bytes_seen = self._content.total_bytes
        state.last_read_ns = time.monotonic_ns()  # the headers were the last thing received
        self._handle = self._loop.call_later(idle_s, self._check)

    def _check(self) -> None:
        now = time.monotonic_ns()
        state = self._state
        received = self._content.total_bytes
        if received != self._bytes_seen:
            self._bytes_seen = received
            if now - state.last_read_ns >= self._idle_ns:  # received but not read yet (a busy loop): progress
                state.last_read_ns = now
        due_ns = state.last_read_ns + self._idle_ns
        if now < due_ns:
            self._handle = self._loop.call_later((due_ns - now) / 1e9, self._check)
        else:
            self._content.set_exception(_IdleTimeout())

    def cancel(self) -> None:
        self._handle.cancel()


def _finite_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


class RequestSender:
    """``async with RequestSender() as sender: record = await sender.send_request(req, url, "sglang")``.

    One keep-alive pool (no per-host limit) for each transport: :mod:`.http1` for streamed ``http://``
    requests, an ``aiohttp.ClientSession`` for the rest. Both store every failure on the record the
    same way (same ``error_type`` and message).

    Args:
        timeout_s: Total time allowed for one request, from send to the last byte.
        api_key: Sent as ``Authorization: Bearer``.
        model: ``model`` of OpenAI request bodies.
        headers: Extra HTTP headers.
        ignore_eos: Sent in every body (exact output lengths).
        extra_request_body: Merged into every body.
        idle_timeout_s: A streaming request fails once the server sent nothing (not even the response
            headers) for this long; this includes the wait for the first token, so set it above the
            longest queueing expected. Non-streaming requests are bounded by ``timeout_s`` only.

    Raises:
        ValueError: If a timeout is not a finite number > 0.
    """

    def __init__(
        self,
        timeout_s: float = 600.0,
        api_key: str | None = None,
        model: str = "default",
        headers: dict[str, str] | None = None,
        ignore_eos: bool = True,
        extra_request_body: dict[str, Any] | None = None,
        idle_timeout_s: float = 60.0,
    ) -> None:
        self.timeout_s = _finite_positive("timeout_s", timeout_s)
        self.idle_timeout_s = _finite_positive("idle_timeout_s", idle_timeout_s)
        self.model = model
        self.ignore_eos = ignore_eos
        self.extra = dict(extra_request_body or {})
        self._headers = {"Content-Type": "application/json", **(headers or {}), **auth_headers(api_key)}
        connect_s = min(CONNECT_TIMEOUT_S, self.timeout_s)
        # The total timeout is one asyncio.timeout around each request (send_request): aiohttp's own
        # ``total`` enters and leaves a timer context on every read of the stream.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s)
        # sock_read bounds the wait for a stream's headers; _IdleWatchdog takes over once they are in.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=self.idle_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._pool: ConnectionPool | None = None
        self._targets: dict[str, tuple[str, int, str, str] | None] = {}  # split_http_url, once per URL

    async def __aenter__(self) -> RequestSender:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, read_bufsize=2**17, timeout=self._timeout)
        self._pool = ConnectionPool(self._timeout.sock_connect or CONNECT_TIMEOUT_S)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http1_target(self, url: str) -> tuple[str, int, str, str] | None:
        """Where a streamed request to ``url`` goes over :mod:`.http1` (None: aiohttp sends it)."""
        try:
            return self._targets[url]
        except KeyError:
            target = self._targets[url] = split_http_url(url)
            return target

    async def send_request(
        self,
        request: Request,
        api_url: str,
        api_type: str = "sglang",
        stream: bool = True,
        scheduled_ns: int | None = None,
        arrival_ns: int | None = None,
    ) -> RequestRecord:
        """Send ``request`` and return its record (never raises, except CancelledError).

        Raises:
            RuntimeError: If called outside ``async with`` (a programming error, not a request failure).
        """
        if self._session is None:
            raise RuntimeError("use 'async with RequestSender() as sender' before sending")
        now = time.monotonic_ns()
        record = RequestRecord(
            request_id=request.request_id,
            api_type=api_type,
            url=api_url,
            prompt_len=request.prompt_len,
            expected_output_len=request.output_len,
            scheduled_ns=scheduled_ns or now,
            arrival_ns=arrival_ns or now,
            group_id=request.group_id,
            turn=request.turn,
            workload=request.workload,
        )
        state = _Stream(cumulative=api_type == "sglang")
        extract = extractor_for(api_type)
        answer = AnswerCollector() if request.collect_output else None  # closed-loop sessions (answers.py)
        if answer is not None:
            extract = collecting(extract, api_type, answer)
        try:
            body = dump_json(build_payload(request, api_type, stream, self.model, self.ignore_eos, self.extra))
            headers = {**self._headers, "X-Request-Id": request.request_id}
            if request.routing_key is not None:
                headers[ROUTING_KEY_HEADER] = request.routing_key
            target = self._http1_target(api_url) if stream else None
            record.send_ns = time.monotonic_ns()
            async with asyncio.timeout(self.timeout_s):
                if target is not None:
                    received = await self._exchange(target, body, headers, state, record, extract)
                else:
                    timeout = self._stream_timeout if stream else self._timeout
                    async with self._session.post(api_url, data=body, headers=headers, timeout=timeout) as resp:
                        received = await self._receive(resp, state, record, extract, stream)
            if not received:
                return record
        except Exception as exc:
            _apply(record, state)
            with contextlib.suppress(ChunkError):  # best effort: the record has already failed
                _apply_server_timings(record, state)
            return _fail(record, *self._describe(exc, record))
        finally:
            if answer is not None:
                answer.store(record)
        return _complete(record, state)

    async def _exchange(
        self,
        target: tuple[str, int, str, str],
        body: bytes,
        headers: dict[str, str],
        state: _Stream,
        record: RequestRecord,
        extract: Extractor,
    ) -> bool:
        """A streamed request over :mod:`.http1` (plain http): the protocol feeds each read to the SSE sink
        in its own callback, and this task wakes once, when the response is complete or failed. False
        (and ``record`` failed) on an HTTP error status."""
        assert self._pool is not None
        host, port, path, authority = target
        request_bytes = encode_head("POST", path, authority, headers, len(body)) + body
        conn = await self._pool.acquire(host, port)
        result: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        exchange = Exchange(_SSESink(state, record, extract), result)
        conn.send(exchange, request_bytes)
        exchange.start_idle_timer(self.idle_timeout_s, conn.abandon)
        try:
            await result
        finally:
            failed = not result.done() or result.cancelled() or result.exception() is not None
            if failed or (exchange.status != 200 and not exchange.complete):
                exchange.stop_idle_timer()
                conn.abandon()  # given up or failed mid-response: the connection is not reused
                result.cancel()  # (if still pending) nothing will resolve it now
            if exchange.status is not None:
                record.http_status = exchange.status
                record.worker_id = exchange.headers.get(WORKER_HEADER.lower())
                record.routed_worker = exchange.headers.get(ROUTED_WORKER_HEADER)
        if exchange.status != 200:
            text = exchange.error_body.decode(errors="replace")
            _fail_status(record, exchange.status or 0, text, exchange.headers.get(GATEWAY_ERROR_HEADER))
            return False
        return True

    async def _receive(
        self, resp: aiohttp.ClientResponse, state: _Stream, record: RequestRecord, extract: Extractor, stream: bool
    ) -> bool:
        """Read the response into ``state``; False (and ``record`` failed) on an HTTP error status."""
        record.http_status = resp.status
        record.worker_id = resp.headers.get(WORKER_HEADER)
        record.routed_worker = resp.headers.get(ROUTED_WORKER_HEADER)
        watchdog = _IdleWatchdog(resp, state, self.idle_timeout_s) if stream else None
        try:
            if resp.status != 200:
                text = (await resp.content.read(_ERROR_BODY_BYTES)).decode(errors="replace")
                _fail_status(record, resp.status, text, resp.headers.get(GATEWAY_ERROR_HEADER))
                return False
            if stream:
                await _read_stream(resp.content, state, record, extract)
            else:
                await _read_body(resp, state, record, extract)
            return True
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _describe(self, exc: Exception, record: RequestRecord) -> tuple[str, str]:
        """``(error_type, error)`` of an exception raised while sending or reading."""
        if isinstance(exc, ChunkError):
            return "stream", f"stream: {exc}"
        if isinstance(exc, _IdleTimeout) or (
            isinstance(exc, aiohttp.ServerTimeoutError) and not isinstance(exc, _CONNECT_TIMEOUT_ERROR)
        ):
            return "timeout", f"idle timeout: nothing received for {self.idle_timeout_s:g}s (idle_timeout_s)"
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return "timeout", f"connect timeout: {_text(exc)}"
        if isinstance(exc, asyncio.TimeoutError):
            return "timeout", f"total timeout: no complete response within {self.timeout_s:g}s (timeout_s)"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return "stream", f"stream broken: {_text(exc)}"
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            kind = "stream" if record.http_status is not None else "connection"
            return kind, f"{type(exc).__name__}: {_text(exc)}"
        # json's ValueError / UnicodeDecodeError (payloads.load_json), or anything unexpected
        kind = "stream" if record.http_status is not None else "client"
        return kind, f"{kind}: {type(exc).__name__}: {_text(exc)}"


class _SSESink:
    """The events of one streamed response into ``state`` (the hot path: names bound once per request).
    Used by both transports: aiohttp's reads (:func:`_read_stream`) and :mod:`.http1`'s protocol."""

    __slots__ = ("_add", "_chunks", "_extract", "_parser", "_record", "_split", "_state")

    def __init__(self, state: _Stream, record: RequestRecord, extract: Extractor) -> None:
        self._parser = SSEParser()
        self._split = self._parser.feed
        self._state = state
        self._add = state.add
        self._chunks = state.chunk_ns
        self._record = record
        self._extract = extract

    def feed(self, data: bytes, now_ns: int) -> bool:
        """The bytes of one socket read, stamped ``now_ns`` before any parsing; True after ``[DONE]``."""
        self._state.last_read_ns = now_ns
        chunks, add, extract = self._chunks, self._add, self._extract
        before = len(chunks)
        for payload in self._split(data):
            add(extract(load_json(payload)), now_ns)
        _count_coalesced(self._state, len(chunks) - before)
        if self._parser.done:
            self._record.finish_ns = now_ns
            return True
        return False

    def end(self, now_ns: int) -> None:
        """The body ended (before ``[DONE]`` unless it came)."""
        state = self._state
        state.last_read_ns = now_ns
        for payload in self._parser.flush():  # at most one unterminated event
            self._add(self._extract(load_json(payload)), now_ns)
        self._record.finish_ns = now_ns
        if not self._parser.done and state.error is None:
            state.error = "stream ended before [DONE]"


async def _read_stream(
    content: aiohttp.StreamReader, state: _Stream, record: RequestRecord, extract: Extractor
) -> None:
    sink = _SSESink(state, record, extract)
    feed = sink.feed
    readany = content.readany
    monotonic_ns = time.monotonic_ns
    while True:
        data = await readany()
        now = monotonic_ns()  # taken as soon as the bytes are read, before any parsing
        if not data:
            sink.end(now)
            return
        if feed(data, now):
            return


def _count_coalesced(state: _Stream, read_chunks: int) -> None:
    """Several token events in one socket read share its timestamp: count them as coalesced."""
    if read_chunks > 1:
        state.coalesced += read_chunks


async def _read_body(resp: aiohttp.ClientResponse, state: _Stream, record: RequestRecord, extract: Extractor) -> None:
    """A non-streaming response: one body, all its tokens at the finish time."""
    raw = await resp.read()
    record.finish_ns = time.monotonic_ns()
    state.add(extract(load_json(raw)), record.finish_ns)
    if state.total and not state.chunk_ns:
        state.chunk_ns, state.chunk_tokens = [record.finish_ns], [state.total]


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:  # a broken __str__ must not turn a failed record into an escaped exception
        return "(unprintable)"


def _fail_status(record: RequestRecord, status: int, text: str, gateway_code: str | None) -> None:
    """Fail ``record`` for an HTTP error status (``gateway`` when SMG itself answered)."""
    record.finish_ns = time.monotonic_ns()
    if gateway_code is not None:
        _fail(record, "gateway", f"HTTP {status} from the router ({gateway_code}): {text[:300]}")
    else:
        _fail(record, "http", f"HTTP {status}: {text[:300]}")


def _fail(record: RequestRecord, error_type: str, message: str) -> RequestRecord:
    record.success = False
    record.error_type = error_type
    record.error = message
    if record.finish_ns is None:
        record.finish_ns = time.monotonic_ns()
    return record


def _apply(record: RequestRecord, state: _Stream) -> RequestRecord:
    """Copy what was measured (also of a failed stream: nothing measured is lost)."""
    record.chunk_ns = state.chunk_ns
    record.chunk_tokens = state.chunk_tokens
    record.coalesced_chunks = state.coalesced
    record.first_token_ns = state.chunk_ns[0] if state.chunk_ns else None
    record.output_tokens = state.total
    record.cached_tokens = state.cached
    record.finish_reason = state.finish_reason
    return record


def _apply_server_timings(record: RequestRecord, state: _Stream) -> None:
    if state.meta is not None:
        timings = server_timings(state.meta)
        record.server_e2e_latency_s = timings.e2e_latency_s
        record.server_queue_time_s = timings.queue_time_s
        record.num_retractions = timings.num_retractions


def _complete(record: RequestRecord, state: _Stream) -> RequestRecord:
    _apply(record, state)
    if state.error is not None:
        return _fail(record, "stream", state.error)
    try:
        _apply_server_timings(record, state)
    except ChunkError as exc:
        return _fail(record, "stream", f"stream: {exc}")
    record.success = True
    return record
