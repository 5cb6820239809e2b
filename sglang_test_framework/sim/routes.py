"""HTTP routes of the simulator: SGLang's native and OpenAI-compatible APIs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .admin_routes import add_admin_routes
from .engine import SimRequest
from .pd import Bootstrap, bootstrap_fields
from .server import Flow, SimServer
from .streams import StreamFormat, chat_format, completion_format, generate_format

__all__ = ["build_app"]

SAMPLING_KEYS = {
    "max_new_tokens",
    "min_new_tokens",
    "ignore_eos",
    "stop",
    "stop_token_ids",
    "stop_regex",
    "no_stop_trim",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "n",
    "sampling_seed",
    "logit_bias",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "stream_interval",
    "json_schema",
    "regex",
    "ebnf",
    "structural_tag",
    "custom_params",
}
SIM: web.AppKey[SimServer] = web.AppKey("sim", SimServer)
StopCheck = Callable[[SimRequest], dict[str, Any] | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": "BadRequestError" if status == 400 else "ServerError",
                "code": status,
            },
            "object": "error",
        },
        status=status,
    )


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return _error(400, "Content-Type must be application/json")
    try:
        data = json.loads(await request.read())
    except ValueError as exc:
        return _error(400, f"invalid JSON body: {exc}")
    return data if isinstance(data, dict) else _error(400, "the body must be a JSON object")


def _stop_check(sim: SimServer, params: dict[str, Any]) -> StopCheck | None:
    stops = params.get("stop") or []
    stops = [stops] if isinstance(stops, str) else list(stops)
    stop_ids = set(params.get("stop_token_ids") or [])
    if not stops and not stop_ids:
        return None

    def check(req: SimRequest) -> dict[str, Any] | None:
        tid = req.output_ids[-1]
        if tid in stop_ids:
            return {"type": "stop", "matched": tid}
        word = sim.tokenizer.word(tid)
        for s in stops:
            if s and s in word:
                return {"type": "stop", "matched": s}
        return None

    return check


async def _run(
    request: web.Request,
    sim: SimServer,
    input_ids: list[int],
    params: dict[str, Any],
    rid: str,
    stream: bool,
    fmt: StreamFormat,
    boot: Bootstrap | str | None = None,
) -> web.StreamResponse:
    arrival = time.monotonic_ns()
    max_new = int(params.get("max_new_tokens", 128))
    if max_new < 0:
        return _error(400, "max_new_tokens must be >= 0")
    if len(input_ids) + max_new > sim.context_len:
        return _error(
            400,
            f"Requested token count exceeds the model's maximum context length of "
            f"{sim.context_len} tokens ({len(input_ids)} in the input, {max_new} to generate).",
        )
    if len(input_ids) + 1 > sim.engine.config.max_total_tokens:
        return _error(
            400,
            f"the input ({len(input_ids)} tokens) does not fit in the KV cache "
            f"({sim.engine.config.max_total_tokens} tokens)",
        )
    fault = sim.fault_for_new_request()
    if fault == "hang":
        await asyncio.Event().wait()  # never answers; ends when the client disconnects
    if isinstance(fault, tuple):
        return _error(fault[0], fault[1])
    req = SimRequest(rid, input_ids, max(max_new, 1), arrival_ns=arrival, stop_check=_stop_check(sim, params))
    if sim.pd is not None:  # PD: the prefill answers here; the decode first waits for its KV (sim/pd.py)
        early = await sim.pd.admit(request, req, boot, stream, fmt)
        if early is not None:
            return early
    flow = sim.submit(req)
    flow.stream_interval = int(params.get("stream_interval") or sim.config.stream_interval)
    try:
        if stream:
            return await _stream(request, sim, flow, fmt)
        while not (req.finished or req.aborted):
            await flow.event.wait()
            flow.event.clear()
        flow.last_write_ns = time.monotonic_ns()
        if req.output_ids:
            flow.first_write_ns = flow.last_write_ns
        return web.json_response(fmt.final_body(sim, flow))
    except (asyncio.CancelledError, ConnectionResetError):
        if not (req.finished or req.aborted):
            flow.status = "aborted"
            sim.abort(rid)
        raise
    finally:
        if (req.finished or req.aborted) and rid in sim.flows:
            sim.finish_flow(flow)


async def _stream(request: web.Request, sim: SimServer, flow: Flow, fmt: StreamFormat) -> web.StreamResponse:
    """Stream a request's tokens. Chunks are written to the socket straight from the step loop (the
    engine's notify callback), so a token costs one chunk build and one socket write, with no task
    wake-up per token; this handler only waits for the end."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    transport = request.transport
    chunked = resp.headers.get("Transfer-Encoding", "").lower() == "chunked"
    req = flow.req
    interval = max(1, flow.stream_interval)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def push(_req: SimRequest) -> None:
        finished = req.finished or req.aborted
        n = len(req.output_ids)
        # like SGLang's --stream-interval: a chunk every `interval` tokens (the first token at once)
        due = n > flow.emitted and (flow.emitted == 0 or n - flow.emitted >= interval)
        if due or (finished and not done.done()):
            if transport is None or transport.is_closing():
                if not finished:
                    flow.status = "aborted"
                    sim.abort(req.rid)
                if not done.done():
                    done.set_result(None)
                return
            data = fmt.chunk(sim, flow, n, finished)
            now = time.monotonic_ns()
            if flow.first_write_ns is None and n > 0:
                flow.first_write_ns = now
            if flow.emitted and n > flow.emitted:
                sim.metrics.itl.observe((now - flow.last_write_ns) / 1e9 / (n - flow.emitted), n - flow.emitted)
            flow.last_write_ns = now
            flow.emitted = n
            transport.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
        if finished and not done.done():
            done.set_result(None)

    head = fmt.head(sim, flow)
    if head:
        await resp.write(head)
    req.notify = push
    push(req)  # anything emitted while the response was being prepared
    await done
    if transport is not None and not transport.is_closing():
        await resp.write(b"data: [DONE]\n\n")
    return resp


async def generate(request: web.Request) -> web.StreamResponse:
    """POST /generate: text or input_ids, sampling_params, stream, rid."""
    sim = request.app[SIM]
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    params = body.get("sampling_params") or {}
    unknown = set(params) - SAMPLING_KEYS
    if unknown:
        return _error(400, f"unknown sampling_params: {sorted(unknown)}")
    if "input_ids" in body and body["input_ids"] is not None:
        ids = body["input_ids"]
        if not isinstance(ids, list) or (ids and not isinstance(ids[0], int)):
            return _error(400, "the simulator supports one request per call: input_ids must be a list of ints")
        input_ids = [int(x) for x in ids]
    elif isinstance(body.get("text"), str):
        input_ids = sim.tokenizer.encode(body["text"])
    else:
        return _error(400, "give 'text' (a string) or 'input_ids'; batched lists are not supported by the simulator")
    rid = str(body.get("rid") or request.headers.get("X-Request-Id") or uuid.uuid4().hex)
    fmt = generate_format(incremental=sim.config.incremental_streaming_output)
    boot = bootstrap_fields(body, sim.config.disaggregation_bootstrap_port)
    return await _run(request, sim, input_ids, params, rid, bool(body.get("stream")), fmt, boot)


async def openai_route(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions and /v1/chat/completions."""
    sim = request.app[SIM]
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    chat = request.path.endswith("/chat/completions")
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages: a non-empty list is required")
        text = " ".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))
        max_new = body.get("max_completion_tokens", body.get("max_tokens", 128))
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return _error(400, "prompt: a string is required (the simulator does not take batches)")
        text = prompt
        max_new = body.get("max_tokens", 16)
    params = {
        "max_new_tokens": max_new if isinstance(max_new, int) else 128,
        "stop": body.get("stop"),
        "stop_token_ids": body.get("stop_token_ids"),
    }
    rid = str(request.headers.get("X-Request-Id") or body.get("rid") or uuid.uuid4().hex)
    opts = body.get("stream_options") or {}
    usage = bool(opts.get("include_usage")) or sim.config.stream_response_default_include_usage
    fmt = (chat_format if chat else completion_format)(
        include_usage=usage, continuous=bool(opts.get("continuous_usage_stats"))
    )
    boot = bootstrap_fields(body, sim.config.disaggregation_bootstrap_port)
    return await _run(request, sim, sim.tokenizer.encode(text), params, rid, bool(body.get("stream")), fmt, boot)


def build_app(sim: SimServer) -> web.Application:
    """The aiohttp application with every route."""
    app = web.Application(middlewares=[_auth_middleware], client_max_size=64 * 2**20)
    app[SIM] = sim

    async def worker_header(_req: web.Request, resp: web.StreamResponse) -> None:
        resp.headers["X-Worker-Id"] = sim.worker_id

    app.on_response_prepare.append(worker_header)
    app.router.add_post("/generate", generate)
    app.router.add_put("/generate", generate)
    app.router.add_post("/v1/completions", openai_route)
    app.router.add_post("/v1/chat/completions", openai_route)
    add_admin_routes(app, SIM)
    if sim.pd is not None:
        app.on_startup.append(sim.pd.start)
        app.on_cleanup.append(sim.pd.stop)
    return app


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sim: SimServer = request.app[SIM]
    key = sim.config.api_key_value
    public = request.path.startswith(("/health", "/ready", "/metrics"))
    if key and not public and request.headers.get("Authorization") != f"Bearer {key}":
        return _error(401, "Unauthorized: send 'Authorization: Bearer <api key>'")
    return await handler(request)
