"""RequestSender: sends one request over a pooled aiohttp session and records precise timings.

Every socket read is timestamped before any parsing; errors are stored on the record, never raised.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import TracebackType
from typing import Any

import aiohttp

from ..http_api import auth_headers
from ..records import Request, RequestRecord
from .payloads import ChunkInfo, build_payload, extract_chunk
from .sse import SSEParser

__all__ = ["RequestSender"]

WORKER_HEADER = "X-Worker-Id"


class _Stream:
    """Accumulates chunk timings and token counts of one response."""

    __slots__ = ("cached", "chunk_ns", "chunk_tokens", "error", "finish_reason", "meta", "text", "total")

    def __init__(self) -> None:
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        self.total = 0
        self.cached: int | None = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.meta: dict[str, Any] | None = None
        self.text: list[str] | None = None

    def add(self, info: ChunkInfo, now_ns: int, api_type: str) -> None:
        if info.error is not None:
            self.error = info.error
            return
        if info.total_tokens is not None and (api_type == "sglang" or info.text):
            new = info.total_tokens - self.total
            self.total = info.total_tokens
        elif info.total_tokens is not None:  # usage-only chunk: fixes the total, is not a token event
            self.total = max(self.total, info.total_tokens)
            new = 0
        else:
            new = info.new_tokens
            self.total += new
        if new > 0:
            self.chunk_ns.append(now_ns)
            self.chunk_tokens.append(new)
            if self.text is not None and info.text:
                self.text.append(info.text)
        if info.cached_tokens is not None:
            self.cached = info.cached_tokens
        if info.finish_reason is not None:
            self.finish_reason = info.finish_reason
        if info.meta is not None:
            self.meta = info.meta


class RequestSender:
    """``async with RequestSender() as sender: record = await sender.send_request(req, url, "sglang")``.

    One pooled ``aiohttp.ClientSession`` for all requests (keep-alive, no per-host limit).
    """

    def __init__(
        self,
        timeout_s: float = 600.0,
        api_key: str | None = None,
        model: str = "default",
        headers: dict[str, str] | None = None,
        ignore_eos: bool = True,
        extra_request_body: dict[str, Any] | None = None,
        record_output_text: bool = False,
    ) -> None:
        self.timeout_s = timeout_s
        self.model = model
        self.ignore_eos = ignore_eos
        self.extra = dict(extra_request_body or {})
        self.record_output_text = record_output_text
        self._headers = {"Content-Type": "application/json", **(headers or {}), **auth_headers(api_key)}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RequestSender:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            read_bufsize=2**17,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=30),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_request(
        self,
        request: Request,
        api_url: str,
        api_type: str = "sglang",
        stream: bool = True,
        scheduled_ns: int | None = None,
        arrival_ns: int | None = None,
    ) -> RequestRecord:
        """Send ``request`` and return its record (never raises, except CancelledError)."""
        if self._session is None:
            raise RuntimeError("use 'async with RequestSender() as sender' before sending")
        body = json.dumps(build_payload(request, api_type, stream, self.model, self.ignore_eos, self.extra)).encode()
        headers = {**self._headers, "X-Request-Id": request.request_id}
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
        )
        state = _Stream()
        if self.record_output_text:
            state.text = []
        record.send_ns = time.monotonic_ns()
        try:
            async with self._session.post(api_url, data=body, headers=headers) as resp:
                record.http_status = resp.status
                record.worker_id = resp.headers.get(WORKER_HEADER)
                if resp.status != 200:
                    text = await resp.text(errors="replace")
                    record.finish_ns = time.monotonic_ns()
                    return _fail(record, "http", f"HTTP {resp.status}: {text[:300]}")
                if stream:
                    await self._read_stream(resp, state, record, api_type)
                else:
                    raw = await resp.read()
                    record.finish_ns = time.monotonic_ns()
                    state.add(extract_chunk(json.loads(raw), api_type), record.finish_ns, api_type)
                    if state.total and not state.chunk_ns:
                        state.chunk_ns, state.chunk_tokens = [record.finish_ns], [state.total]
        except asyncio.TimeoutError:
            return _fail(_apply(record, state), "timeout", f"no complete response within {self.timeout_s:g}s")
        except aiohttp.ClientPayloadError as exc:
            return _fail(_apply(record, state), "stream", f"stream broken: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            kind = "stream" if state.chunk_ns else "connection"
            return _fail(_apply(record, state), kind, f"{type(exc).__name__}: {exc}")
        except ValueError as exc:
            return _fail(_apply(record, state), "stream", f"invalid JSON in response: {exc}")
        return _complete(record, state)

    async def _read_stream(
        self, resp: aiohttp.ClientResponse, state: _Stream, record: RequestRecord, api_type: str
    ) -> None:
        parser = SSEParser()
        content = resp.content
        while True:
            data = await content.readany()
            now = time.monotonic_ns()  # taken as soon as the bytes are read, before any parsing
            if not data:
                for payload in parser.flush():
                    state.add(extract_chunk(json.loads(payload), api_type), now, api_type)
                record.finish_ns = now
                if not parser.done and state.error is None:
                    state.error = "stream ended before [DONE]"
                return
            for payload in parser.feed(data):
                state.add(extract_chunk(json.loads(payload), api_type), now, api_type)
            if parser.done:
                record.finish_ns = now
                return


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
    record.first_token_ns = state.chunk_ns[0] if state.chunk_ns else None
    record.output_tokens = state.total
    record.cached_tokens = state.cached
    record.finish_reason = state.finish_reason
    if state.text is not None:
        record.output_text = "".join(state.text)
    meta = state.meta or {}
    if isinstance(meta.get("e2e_latency"), (int, float)):
        record.server_e2e_latency_s = float(meta["e2e_latency"])
    if isinstance(meta.get("queue_time"), (int, float)):
        record.server_queue_time_s = float(meta["queue_time"])
    if isinstance(meta.get("num_retractions"), int):
        record.num_retractions = meta["num_retractions"]
    return record


def _complete(record: RequestRecord, state: _Stream) -> RequestRecord:
    _apply(record, state)
    if state.error is not None:
        return _fail(record, "stream", state.error)
    record.success = True
    return record
