"""A minimal HTTP/1.1 client for the streaming hot path: one POST per exchange, parsed in the protocol.

aiohttp hands every socket read to its parser, a ``StreamReader`` and a task wake-up before our code
sees it. Here ``data_received`` stamps the read and hands the decoded body bytes straight to a sink
(the sender's SSE reader) in the same callback; the sending task is woken once, when the response is
complete (or failed). Only plain ``http://`` is spoken (loopback and cluster-internal servers); the
sender keeps aiohttp for ``https://`` and for non-streaming requests.

Connections are kept alive in a pool per ``(host, port)``; one is reused only after its previous
response was read to its end (a stream abandoned mid-way closes its connection). Failures raise
aiohttp's own exception types, so the sender describes them exactly as it does aiohttp's:
:class:`aiohttp.ServerDisconnectedError` (closed before the response headers),
:class:`aiohttp.ClientPayloadError` (closed or malformed mid-body), ``aiohttp.ConnectionTimeoutError``
(connect timeout), :class:`HTTPProtocolError` (not an HTTP/1.x response).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, cast

import aiohttp

__all__ = [
    "BodySink",
    "ConnectionPool",
    "Exchange",
    "HTTPProtocolError",
    "IdleTimeoutError",
    "encode_head",
    "split_http_url",
]

MAX_HEAD_BYTES = 64 * 1024
"""A response head (status line + headers) longer than this is refused."""
ERROR_BODY_BYTES = 2048
"""How much of a non-200 response body is kept for the error message."""
_CONNECT_TIMEOUT_ERROR: type[Exception] = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError)

# body framing
_UNTIL_CLOSE, _LENGTH, _CHUNKED = 0, 1, 2
# chunked decoder states
_SIZE, _DATA, _DATA_END, _TRAILER = 0, 1, 2, 3
_HEX = b"0123456789abcdefABCDEF"


class HTTPProtocolError(aiohttp.ClientError):
    """The server's bytes are not a well-formed HTTP/1.x response."""


class IdleTimeoutError(aiohttp.ServerTimeoutError):
    """The server sent nothing (not even the response head) for the idle timeout."""


class BodySink(Protocol):
    """Receives a 200 response's body as it is read (``now_ns``: when the socket read happened)."""

    def feed(self, data: bytes, now_ns: int) -> bool:
        """Consume ``data``; True once the sink has all it needs (the exchange's result is then ready)."""
        ...

    def end(self, now_ns: int) -> None:
        """The body ended (the server finished the message or closed the connection cleanly)."""
        ...


def encode_head(method: str, path: str, host: str, headers: dict[str, str], body_len: int) -> bytes:
    """The request line and headers of one request (``Content-Length`` framing).

    Raises:
        ValueError: If a header name or value holds a line break (it would split the request).
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {body_len}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Exchange:
    """One request and its response on a :class:`_Connection`: the head is parsed here, a 200 body goes to
    ``sink``; :attr:`result` resolves when the sink has all it needs, the body ends or it fails."""

    __slots__ = (
        "_buf",
        "_chunk_left",
        "_chunk_state",
        "_error_body",
        "_framing",
        "_idle_ns",
        "_left",
        "_on_stuck",
        "_sink",
        "_timer",
        "complete",
        "headers",
        "keep_alive",
        "last_read_ns",
        "result",
        "status",
    )

    def __init__(self, sink: BodySink, result: asyncio.Future[None]) -> None:
        self._sink = sink
        self.result = result
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.keep_alive = True
        self.complete = False  # the whole HTTP message was read: the connection may be reused
        self.last_read_ns = time.monotonic_ns()
        self._buf = b""  # head bytes, or a chunk-size line, not yet complete
        self._framing = _UNTIL_CLOSE
        self._left = 0  # Content-Length bytes still to come
        self._chunk_state = _SIZE
        self._chunk_left = 0
        self._error_body: list[bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_ns = 0
        self._on_stuck: Callable[[], None] | None = None

    def start_idle_timer(self, idle_s: float, on_stuck: Callable[[], None]) -> None:
        """Fail the exchange with :class:`IdleTimeoutError` once nothing was read for ``idle_s``; if its
        result was already given but the message never ends, call ``on_stuck`` (close the connection).
        One timer per exchange, re-armed when it fires early; a read costs only the ``last_read_ns`` stamp."""
        self._idle_ns = int(idle_s * 1e9)
        self._on_stuck = on_stuck
        self._timer = asyncio.get_running_loop().call_later(idle_s, self._check_idle)

    def stop_idle_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_idle(self) -> None:
        self._timer = None
        if self.complete:
            return
        now = time.monotonic_ns()
        due_ns = self.last_read_ns + self._idle_ns
        if now < due_ns:
            self._timer = asyncio.get_running_loop().call_later((due_ns - now) / 1e9, self._check_idle)
        elif not self.result.done():
            self.fail(IdleTimeoutError())
        elif self._on_stuck is not None:
            self._on_stuck()

    def feed(self, data: bytes, now_ns: int) -> None:
        """Bytes of one socket read (stamped before this call). Raises on a malformed response."""
        self.last_read_ns = now_ns
        if self.status is None:
            data = self._head(data)
            if self.status is None or (not data and not self.complete):
                return
        if self._framing == _CHUNKED:
            body = self._dechunk(data)
        elif self._framing == _LENGTH:
            body = data[: self._left] if len(data) > self._left else data
            self._left -= len(body)
            if self._left == 0:
                self.complete = True
                if len(body) < len(data):  # bytes after the message: not reused
                    self.keep_alive = False
        else:
            body = data
        if body:
            self._body(body, now_ns)
        if self.complete:
            self._end(now_ns)

    def _head(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise HTTPProtocolError(f"response head longer than {MAX_HEAD_BYTES} bytes")
            self._buf = buf
            return b""
        self._buf = b""
        lines = buf[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
            raise HTTPProtocolError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
        headers = self.headers
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HTTPProtocolError(f"malformed header line: {line[:100]!r}")
            headers.setdefault(name.strip().lower(), value.strip())
        status = int(parts[1])
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding != "identity" and status == 200:  # we send no Accept-Encoding: SSE cannot be compressed
            raise HTTPProtocolError(f"unexpected Content-Encoding {encoding[:40]!r}")
        connection = headers.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (parts[0] != "HTTP/1.0" or "keep-alive" in connection)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing = _CHUNKED
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise HTTPProtocolError(f"Content-Length is {length[:40]!r}, not a number")
            self._framing, self._left = _LENGTH, int(length)
            self.complete = self._left == 0
        else:
            self.keep_alive = False
        if status != 200:
            self._error_body = []
        if status == 204 or status == 304 or 100 <= status < 200:
            raise HTTPProtocolError(f"unexpected HTTP {status} to a POST")
        self.status = status
        return buf[end + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        """The payload bytes of ``data`` (chunked transfer coding); sets :attr:`complete` at the last chunk."""
        if not self._buf and self._chunk_state == _SIZE:  # the usual read: exactly one whole chunk
            eol = data.find(b"\r\n")
            if 0 < eol <= 8 and not data[:eol].strip(_HEX):
                start = eol + 2
                end = start + int(data[:eol], 16)
                if end > start and len(data) == end + 2 and data.endswith(b"\r\n"):
                    return data[start:end]
        if self._buf:
            data, self._buf = self._buf + data, b""
        out: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n:
            state = self._chunk_state
            if state == _DATA:
                take = min(self._chunk_left, n - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._chunk_state = _DATA_END
                continue
            if state == _DATA_END:
                if n - pos < 2:
                    self._buf = data[pos:]
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise aiohttp.ClientPayloadError("malformed chunked body: no CRLF after a chunk")
                pos += 2
                self._chunk_state = _SIZE
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                if n - pos > 4096:
                    raise aiohttp.ClientPayloadError("malformed chunked body: chunk-size line too long")
                self._buf = data[pos:]
                break
            line = data[pos:eol]
            pos = eol + 2
            if state == _TRAILER:
                if not line:  # the blank line after the last chunk: the message is complete
                    self.complete = True
                    if pos < n:  # bytes after the message: the connection is out of step, not reused
                        self.keep_alive = False
                    break
                continue
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or size_text.strip(_HEX) or len(size_text) > 16:
                raise aiohttp.ClientPayloadError(f"malformed chunked body: chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                self._chunk_state = _TRAILER
            else:
                self._chunk_state, self._chunk_left = _DATA, size
        return b"".join(out) if len(out) != 1 else out[0]

    def _body(self, body: bytes, now_ns: int) -> None:
        if self._error_body is not None:
            self._error_body.append(body)
            if sum(map(len, self._error_body)) >= ERROR_BODY_BYTES:
                self.keep_alive = False  # the rest is not read
                self._resolve()
        elif not self.result.done() and self._sink.feed(body, now_ns):
            self._resolve()

    def _end(self, now_ns: int) -> None:
        if self._error_body is None and not self.result.done():
            self._sink.end(now_ns)
        self._resolve()

    @property
    def error_body(self) -> bytes:
        """The first :data:`ERROR_BODY_BYTES` of a non-200 response's body."""
        return b"".join(self._error_body or [])[:ERROR_BODY_BYTES]

    def _resolve(self) -> None:
        if not self.result.done():
            self.result.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """The exchange failed (if its result is still pending, it raises ``exc``)."""
        if not self.result.done():
            self.result.set_exception(exc)

    def connection_lost(self, now_ns: int) -> None:
        """The server closed the connection: the end of an until-close body, else a failure."""
        self.stop_idle_timer()
        if self.complete or self.result.done():
            return
        if self.status is None:
            self.fail(aiohttp.ServerDisconnectedError())
        elif self._framing == _UNTIL_CLOSE:
            self.complete = True
            self._end(now_ns)
        else:
            self.fail(aiohttp.ClientPayloadError("Response payload is not completed"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; feeds the bytes of each read to the current :class:`Exchange`."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (not always an asyncio.Transport instance: uvloop's are its own classes)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()  # taken as soon as the bytes are read, before any parsing
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        try:
            exchange.feed(data, now)
        except Exception as exc:  # malformed HTTP, or the sink refused a chunk: the exchange fails
            exchange.stop_idle_timer()
            exchange.fail(exc)
            self.close()
            return
        if exchange.complete:
            exchange.stop_idle_timer()
            self.exchange = None
            if exchange.keep_alive and exchange.result.done():
                self._pool.release(self)
            else:
                self.close()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.connection_lost(time.monotonic_ns())

    def send(self, exchange: Exchange, data: bytes) -> None:
        """Write a request; its response goes to ``exchange``."""
        if self.closed or self.transport is None or self.transport.is_closing():
            exchange.fail(aiohttp.ServerDisconnectedError())
            return
        self.exchange = exchange
        self.transport.write(data)

    def abandon(self) -> None:
        """The sender gave up on the current exchange (timeout, cancellation): close the connection."""
        if self.exchange is not None:
            self.exchange = None
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ConnectionPool:
    """Keep-alive connections per ``(host, port)``; :meth:`close` closes every one."""

    def __init__(self, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._keys: dict[_Connection, tuple[str, int]] = {}

    async def acquire(self, host: str, port: int) -> _Connection:
        """An idle connection to ``host:port``, or a new one.

        Raises:
            OSError: If connecting fails.
            aiohttp.ConnectionTimeoutError: If connecting takes longer than the connect timeout.
        """
        key = (host, port)
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
            self.forget(conn)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, conn = await loop.create_connection(lambda: _Connection(self), host, port)
        except TimeoutError:
            raise _CONNECT_TIMEOUT_ERROR(f"Connection timeout to host http://{host}:{port}") from None
        self._all.add(conn)
        self._keys[conn] = key
        return conn

    def release(self, conn: _Connection) -> None:
        """``conn`` finished its exchange and may be reused."""
        key = self._keys.get(conn)
        if key is None:  # the pool was closed meanwhile
            conn.close()
            return
        self._idle.setdefault(key, []).append(conn)

    def forget(self, conn: _Connection) -> None:
        """``conn`` is closed: drop it."""
        self._all.discard(conn)
        self._keys.pop(conn, None)

    def close(self) -> None:
        """Close every connection of the pool."""
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._keys.clear()
        self._idle.clear()


def split_http_url(url: str) -> tuple[str, int, str, str] | None:
    """``(host, port, path, Host header)`` of a plain ``http://`` URL; None for anything else (https, a
    user:password part, an IPv6 literal), which the sender leaves to aiohttp."""
    if not url.startswith("http://"):
        return None
    rest = url[7:]
    slash = rest.find("/")
    authority, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    if not authority or "@" in authority or "[" in authority or "#" in path:
        return None
    host, sep, port_text = authority.partition(":")
    if not sep:
        return host, 80, path, authority
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text), path, authority
