"""A reference server with exactly known timing, for measuring the client (not a simulator).

    python benchmarks/reference_server.py --port 0 --truth truth.jsonl --ttft-ms 20 --itl-ms 5

Serves SGLang's native ``/generate`` (streaming SSE or one JSON body) plus ``/health``,
``/health_generate``, ``/server_info`` and ``/flush_cache``. Each request's first token is written at
``arrival + TTFT`` and token k (k ≥ 1) at ``arrival + TTFT + k·ITL``: absolute deadlines on the event
loop's clock (``loop.call_at``), never chained sleeps, so lateness never accumulates. The events are
byte-for-byte the shape ``sglang_test_framework/sim/streams.py`` emits for ``/generate`` (cumulative
``text`` and ``output_ids``, ``meta_info`` with ``completion_tokens``, ``prompt_tokens``,
``cached_tokens``, ``finish_reason``; ``e2e_latency`` on the last event; then ``data: [DONE]`` in its
own write).

Ground truth: one JSON line per request in ``--truth`` when it ends: ``rid`` (the payload's ``rid``),
``arrival_ns`` (when the request's bytes were read from the socket, before aiohttp parsed them; the
deadlines count from it), ``handler_ns`` (when the handler started), ``token_ns``
(``time.monotonic_ns()`` taken just before each token's event is written to the socket), ``ttft_ns`` /
``itl_ns`` (the configured timing, so lateness against the deadlines can be computed),
``prompt_tokens``, ``completion_tokens`` and ``status`` (``ok`` or ``aborted`` when the client went
away). The clock is CLOCK_MONOTONIC, the one the client stamps its records with, so client and truth
compare directly.

This file imports nothing from ``sglang_test_framework``: it is independent of the simulator and of the
client it measures. Once listening it prints ``listening on http://HOST:PORT`` on stdout (the line the
benchmark reads to learn a ``--port 0`` port). SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web

__all__ = ["ReferenceConfig", "build_app", "main"]

DEFAULT_OUTPUT_TOKENS = 16
_DONE = b"data: [DONE]\n\n"
_META_TAIL = b',"cached_tokens":0,"reasoning_tokens":0,"weight_version":"default","num_retractions":0'


@dataclass(frozen=True)
class ReferenceConfig:
    """Timing of every request (ns) and where the ground truth goes."""

    ttft_ns: int
    itl_ns: int
    output_tokens: int | None  # None: the request's max_new_tokens
    truth_path: Path | None


class _Truth:
    """Appends one JSON line per finished request (line-buffered: a reader sees only whole lines)."""

    def __init__(self, path: Path | None) -> None:
        self._file: IO[str] | None = path.open("a", buffering=1, encoding="utf-8") if path else None

    def write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


CONFIG: web.AppKey[ReferenceConfig] = web.AppKey("config", ReferenceConfig)
TRUTH: web.AppKey[_Truth] = web.AppKey("truth", _Truth)
ARRIVALS: web.AppKey[dict[int, int]] = web.AppKey("arrivals", dict)


class _ArrivalStamp(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol and stamps when request bytes are read from the socket.

    The stamp (keyed by the id of aiohttp's protocol, which handlers see as ``request.protocol``) is the
    request's arrival: taken before aiohttp parses the request and starts the handler's task, so the
    server's own parsing and scheduling do not count as the client's error. HTTP/1.1 without pipelining
    (as aiohttp's client sends) means the last read before a handler runs completed its request.
    """

    def __init__(self, inner: asyncio.Protocol, arrivals: dict[int, int]) -> None:
        self._inner = inner
        self._arrivals = arrivals

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._arrivals[id(self._inner)] = time.monotonic_ns()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arrivals.pop(id(self._inner), None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _event(rid_json: bytes, prompt_tokens: int, k: int, n: int, arrival_ns: int) -> bytes:
    """The k-th (1-based) ``/generate`` event of n: cumulative text and ids, as the simulator renders them."""
    text = b" ".join(b"tok%d" % i for i in range(1, k + 1))
    ids = b",".join(b"%d" % i for i in range(1, k + 1))
    meta = b'{"id":' + rid_json
    if k < n:
        meta += b',"finish_reason":null,"prompt_tokens":%d,"completion_tokens":%d' % (prompt_tokens, k)
        meta += _META_TAIL + b"}"
    else:
        meta += b',"finish_reason":{"type":"length","length":%d},"prompt_tokens":%d,"completion_tokens":%d' % (
            n,
            prompt_tokens,
            k,
        )
        meta += _META_TAIL + b',"e2e_latency":%r}' % ((time.monotonic_ns() - arrival_ns) / 1e9)
    return b'data: {"text":"' + text + b'","output_ids":[' + ids + b'],"meta_info":' + meta + b"}\n\n"


class _Emitter:
    """Writes one streaming request's events at their absolute deadlines, from timer callbacks.

    Each callback writes straight to the transport and arms the next deadline with ``call_at``: one
    pending timer per request, no task wake-up per token.
    """

    def __init__(
        self, request: web.Request, chunked: bool, rid: str, prompt_tokens: int, n: int, arrival_ns: int
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = request.transport
        self._chunked = chunked
        self._rid_json = json.dumps(rid).encode()
        self._prompt_tokens = prompt_tokens
        self._n = n
        self._arrival_ns = arrival_ns
        self._first_ns = 0
        self._itl_ns = 0
        self.token_ns: list[int] = []
        self.done: asyncio.Future[bool] = self._loop.create_future()  # True: every token written

    def start(self, first_deadline_ns: int, itl_ns: int) -> None:
        self._first_ns = first_deadline_ns
        self._itl_ns = itl_ns
        self._loop.call_at(first_deadline_ns / 1e9, self._fire)  # the loop's clock is time.monotonic()

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)

    def _fire(self) -> None:
        if self.done.done():
            return
        if self._transport is None or self._transport.is_closing():
            self.done.set_result(False)
            return
        k = len(self.token_ns) + 1
        data = _event(self._rid_json, self._prompt_tokens, k, self._n, self._arrival_ns)
        self.token_ns.append(time.monotonic_ns())  # just before the bytes go to the socket
        self._write(data)
        if k < self._n:
            self._loop.call_at((self._first_ns + k * self._itl_ns) / 1e9, self._fire)
        else:
            self._write(_DONE)  # its own write, as SGLang sends it
            self.done.set_result(True)


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _output_tokens(cfg: ReferenceConfig, body: dict[str, Any]) -> int:
    if cfg.output_tokens is not None:
        return cfg.output_tokens
    params = body.get("sampling_params")
    value = params.get("max_new_tokens") if isinstance(params, dict) else None
    return max(1, value) if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_OUTPUT_TOKENS


def _prompt_tokens(body: dict[str, Any]) -> int:
    ids = body.get("input_ids")
    if isinstance(ids, list):
        return len(ids)
    text = body.get("text")
    return len(text.split()) if isinstance(text, str) else 0


async def generate(request: web.Request) -> web.StreamResponse:
    """POST /generate: ``text`` or ``input_ids``, ``sampling_params.max_new_tokens``, ``stream``, ``rid``."""
    handler_ns = time.monotonic_ns()
    arrival_ns = request.app[ARRIVALS].get(id(request.protocol), handler_ns)
    cfg = request.app[CONFIG]
    body = await _body(request)
    if body is None:
        return web.json_response({"error": {"message": "the body must be a JSON object", "code": 400}}, status=400)
    rid = str(body.get("rid") or uuid.uuid4().hex)
    n = _output_tokens(cfg, body)
    prompt_tokens = _prompt_tokens(body)
    first_ns = arrival_ns + cfg.ttft_ns
    truth: dict[str, Any] = {
        "rid": rid,
        "arrival_ns": arrival_ns,
        "handler_ns": handler_ns,
        "ttft_ns": cfg.ttft_ns,
        "itl_ns": cfg.itl_ns,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": n,
    }
    if not body.get("stream"):
        await asyncio.sleep(max(0.0, (first_ns + (n - 1) * cfg.itl_ns - time.monotonic_ns()) / 1e9))
        truth.update(token_ns=[time.monotonic_ns()] * n, status="ok", stream=False)
        ids = list(range(1, n + 1))
        meta = {"id": rid, "finish_reason": {"type": "length", "length": n}, "prompt_tokens": prompt_tokens}
        meta.update(completion_tokens=n, cached_tokens=0, e2e_latency=(time.monotonic_ns() - arrival_ns) / 1e9)
        request.app[TRUTH].write(truth)
        return web.json_response({"text": " ".join(f"tok{i}" for i in ids), "output_ids": ids, "meta_info": meta})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    emitter = _Emitter(
        request, resp.headers.get("Transfer-Encoding", "").lower() == "chunked", rid, prompt_tokens, n, arrival_ns
    )
    emitter.start(first_ns, cfg.itl_ns)
    complete = False
    try:
        complete = await emitter.done
    finally:
        if not emitter.done.done():
            emitter.done.set_result(False)  # cancelled (client gone): stop the timer chain
        truth.update(token_ns=emitter.token_ns, status="ok" if complete else "aborted", stream=True)
        request.app[TRUTH].write(truth)
    return resp


async def health(request: web.Request) -> web.Response:
    """GET /health, /health_generate."""
    return web.Response(text="")


async def server_info(request: web.Request) -> web.Response:
    """GET /server_info: the configured timing."""
    cfg = request.app[CONFIG]
    return web.json_response(
        {
            "version": "reference",
            "served_model_name": "reference",
            "ttft_ms": cfg.ttft_ns / 1e6,
            "itl_ms": cfg.itl_ns / 1e6,
            "output_tokens": cfg.output_tokens,
            "max_running_requests": None,
            "max_total_num_tokens": None,
        }
    )


async def flush_cache(request: web.Request) -> web.Response:
    """/flush_cache (any method): there is no cache; answers as SGLang does."""
    return web.Response(text="Cache flushed.\n")


def build_app(cfg: ReferenceConfig) -> web.Application:
    """The aiohttp application (the truth file is opened here and closed on cleanup)."""
    app = web.Application()
    app[CONFIG] = cfg
    app[TRUTH] = _Truth(cfg.truth_path)
    app[ARRIVALS] = {}

    async def close_truth(app: web.Application) -> None:
        app[TRUTH].close()

    app.on_cleanup.append(close_truth)
    app.router.add_post("/generate", generate)
    for path in ("/health", "/health_generate"):
        app.router.add_get(path, health)
    for path in ("/server_info", "/get_server_info"):
        app.router.add_get(path, server_info)
    app.router.add_route("*", "/flush_cache", flush_cache)
    return app


async def _serve(cfg: ReferenceConfig, host: str, port: int) -> None:
    app = build_app(cfg)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    aiohttp_server = runner.server  # aiohttp's protocol factory (its documented low-level server)
    assert aiohttp_server is not None
    arrivals = app[ARRIVALS]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # bound here, so the port of --port 0 is known before serving
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _ArrivalStamp(aiohttp_server(), arrivals), sock=sock, backlog=4096)
    print(f"listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await runner.cleanup()


def _parse(argv: list[str] | None) -> tuple[ReferenceConfig, str, int]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    p.add_argument("--truth", type=Path, default=None, help="ground-truth JSONL file (appended to)")
    p.add_argument("--ttft-ms", type=float, default=20.0, help="first token this long after arrival")
    p.add_argument("--itl-ms", type=float, default=5.0, help="then one token every ITL")
    p.add_argument(
        "--output-tokens", type=int, default=None, help="tokens per request (default: the request's max_new_tokens)"
    )
    a = p.parse_args(argv)
    if a.ttft_ms < 0 or a.itl_ms < 0:
        p.error("--ttft-ms and --itl-ms must be ≥ 0")
    if a.output_tokens is not None and a.output_tokens < 1:
        p.error("--output-tokens must be ≥ 1")
    cfg = ReferenceConfig(round(a.ttft_ms * 1e6), round(a.itl_ms * 1e6), a.output_tokens, a.truth)
    return cfg, a.host, a.port


def main(argv: list[str] | None = None) -> None:
    """Run the server until SIGTERM / SIGINT."""
    cfg, host, port = _parse(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(cfg, host, port))


if __name__ == "__main__":
    main()
