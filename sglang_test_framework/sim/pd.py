"""Prefill/decode disaggregation on the simulator (SGLang's ``--disaggregation-mode prefill|decode``).

SMG (``--pd-disaggregation``) sends the same body to a prefill and a decode worker at once, adding
``bootstrap_host``, ``bootstrap_port`` and ``bootstrap_room``. As in SGLang:

- the **decode** preallocates the prompt's KV against its own pool (prealloc queue), then hands its
  room to the prefill's bootstrap server and waits for the KV (transfer queue); when it arrives the
  request joins the next decode step without a prefill forward, the token sampled by the prefill (the
  handoff token) is its first output token, and it decodes and streams the rest;
- the **prefill** waits for the decode's handshake of its room (bootstrap queue), runs the prompt
  through its own scheduler (chunking, radix cache, one output token), then "transfers" the KV over its
  link (inflight queue) and answers.

The bootstrap server is an HTTP listener on ``--disaggregation-bootstrap-port`` of the prefill:
``POST /sim/pd/rooms/{room}`` registers the decode and answers when the room's KV has arrived (or with
an error). KV bytes per token come from the model (MHA/GQA: 2·L·kv_heads·head_dim·bytes, heads split
over TP ranks; MLA: L·(kv_lora_rank + rope_dim)·bytes on every rank); each TP rank has its own link of
``--sim-kv-link-gbps``, so a transfer takes latency + prompt_tokens × bytes_per_rank_token ÷ link rate,
and transfers of one prefill worker queue on its link. A room that gets no handshake or no KV in time
fails with SGLang's messages (``… timed out after Xs in KVPoll.Bootstrapping`` / ``WaitingForInput``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .pd_model import KVLink, PDStats, kv_link

if TYPE_CHECKING:
    from .engine import SimRequest
    from .server import Flow, SimServer
    from .streams import StreamFormat

__all__ = [
    "ROOM_PATH",
    "Bootstrap",
    "DecodeRole",
    "KVLink",
    "PDRole",
    "PrefillRole",
    "bootstrap_fields",
    "kv_link",
    "make_role",
]

ROOM_PATH = "/sim/pd/rooms/{room}"
"""The bootstrap server's rendezvous endpoint (on the prefill's bootstrap port)."""


@dataclass(frozen=True)
class Bootstrap:
    """The PD fields of a request body."""

    host: str
    port: int
    room: int


def bootstrap_fields(body: dict[str, Any], default_port: int) -> Bootstrap | str | None:
    """``bootstrap_host/port/room`` of a body: a Bootstrap, None when there is no room, or an error text.
    A null port means the server's own ``--disaggregation-bootstrap-port``, as in SGLang."""
    room = body.get("bootstrap_room")
    if room is None:
        return None
    port = body.get("bootstrap_port")
    if isinstance(room, list) or isinstance(port, list):
        return "bootstrap_room: the simulator takes one request per call, not a batch"
    try:
        return Bootstrap(str(body.get("bootstrap_host") or "127.0.0.1"), int(port or default_port), int(room))
    except (TypeError, ValueError):
        return f"bootstrap_room {room!r} / bootstrap_port {port!r}: must be integers"


def error_response(status: int, message: str) -> web.Response:
    """SGLang's error body (the same shape as the simulator's other errors)."""
    kind = "BadRequestError" if status == 400 else "InternalServerError"
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": status}, "object": "error"}, status=status
    )


def _stamp() -> int:
    return time.monotonic_ns()


class PDRole:
    """What both roles share: the server, the link model and the PD metrics."""

    mode = "null"

    def __init__(self, sim: SimServer) -> None:
        cfg = sim.config
        self.sim = sim
        self.link = kv_link(sim.profile.model, cfg.tp_size, cfg.sim_kv_link_gbps, cfg.sim_kv_link_latency_ms)
        self.stats = PDStats(self.mode)

    async def start(self, app: web.Application) -> None:
        """Start what the role needs (bootstrap server / HTTP client)."""

    async def stop(self, app: web.Application) -> None:
        """Stop it."""

    def after_step(self) -> None:
        """Called by the step loop after every step."""

    def gauges(self) -> dict[str, float]:
        """SGLang's PD queue gauges."""
        return {}

    def loads_section(self) -> dict[str, Any]:
        """The ``disaggregation`` section of ``/v1/loads``."""
        g = self.gauges()
        return {
            "mode": self.mode,
            "prefill_bootstrap_queue_reqs": g.get("num_prefill_bootstrap_queue_reqs", 0),
            "prefill_inflight_queue_reqs": g.get("num_prefill_inflight_queue_reqs", 0),
            "decode_prealloc_queue_reqs": g.get("num_decode_prealloc_queue_reqs", 0),
            "decode_transfer_queue_reqs": g.get("num_decode_transfer_queue_reqs", 0),
            "decode_retracted_queue_reqs": sum(1 for r in self.sim.engine.waiting if r.retractions),
            "kv_transfer_speed_gb_s": round(self.stats.last_speed_gb_s, 6),
            "kv_transfer_latency_ms": round(self.stats.last_latency_ms, 6),
        }

    async def admit(
        self, request: web.Request, req: SimRequest, boot: Bootstrap | str | None, stream: bool, fmt: StreamFormat
    ) -> web.StreamResponse | None:
        """Run the role's part before the normal path: a response to send now, or None to go on. A
        request without a valid bootstrap room is answered 400."""
        if not isinstance(boot, Bootstrap):
            return self._missing_room(boot)
        return await self._admit(request, req, boot, stream, fmt)

    async def _admit(
        self, request: web.Request, req: SimRequest, boot: Bootstrap, stream: bool, fmt: StreamFormat
    ) -> web.StreamResponse | None:
        """The role's part for a request with its bootstrap room."""
        raise NotImplementedError

    def _missing_room(self, boot: Bootstrap | str | None) -> web.Response | None:
        if boot is None:
            return error_response(
                400,
                f"bootstrap_room is required by a {self.mode} server (--disaggregation-mode {self.mode}); "
                "send requests through a PD router (smg --pd-disaggregation)",
            )
        if isinstance(boot, str):
            return error_response(400, boot)
        return None


@dataclass(eq=False)
class Room:
    """A bootstrap room on the prefill side."""

    registered: asyncio.Event = field(default_factory=asyncio.Event)
    decode: dict[str, Any] = field(default_factory=dict)
    registered_ns: int = 0
    outcome: asyncio.Future[dict[str, Any]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class PrefillRole(PDRole):
    """The prefill worker: bootstrap server, bootstrap queue, prefill forward, KV transfer."""

    mode = "prefill"

    def __init__(self, sim: SimServer) -> None:
        super().__init__(sim)
        self.rooms: dict[int, Room] = {}
        self.bootstrap_queue = 0
        self.inflight = 0
        self.link_free_ns = 0
        self._runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> None:
        boot = web.Application()
        boot.router.add_post(ROOM_PATH, self._handle_room)
        boot.router.add_get("/health", _ok)
        self._runner = web.AppRunner(boot, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        cfg = self.sim.config
        await web.TCPSite(self._runner, cfg.host, cfg.disaggregation_bootstrap_port, reuse_address=True).start()

    async def stop(self, app: web.Application) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def gauges(self) -> dict[str, float]:
        return {
            "num_prefill_bootstrap_queue_reqs": self.bootstrap_queue,
            "num_prefill_inflight_queue_reqs": self.inflight,
        }

    def _room(self, room: int) -> Room:
        if room not in self.rooms:
            self.rooms[room] = Room()
        return self.rooms[room]

    async def _handle_room(self, request: web.Request) -> web.Response:
        """Bootstrap server: a decode registers its room and waits for the KV (long poll)."""
        room_id = int(request.match_info["room"])
        state = self._room(room_id)
        with contextlib.suppress(ValueError):
            state.decode = dict(await request.json())
        state.registered_ns = _stamp()
        state.registered.set()
        try:
            outcome = await asyncio.shield(state.outcome)
        except RuntimeError as exc:
            return web.json_response({"error": str(exc)}, status=500)
        except asyncio.CancelledError:  # the decode gave up (timeout, abort): a late prefill finds no handshake
            if self.rooms.get(room_id) is state:
                self.rooms.pop(room_id, None)
            raise
        finally:
            if self.rooms.get(room_id) is state and state.outcome.done():
                self.rooms.pop(room_id, None)
        # Answered when the prefill ends, with the modelled transfer end: the decode schedules the request
        # from that instant, so loopback/HTTP latency never adds to the modelled transfer.
        return web.json_response(outcome)

    async def _admit(
        self, request: web.Request, req: SimRequest, boot: Bootstrap, stream: bool, fmt: StreamFormat
    ) -> web.StreamResponse | None:
        sim = self.sim
        req.max_new_tokens = 1  # the prefill samples one token: the handoff token
        state = self._room(boot.room)
        truth: dict[str, Any] = {"role": "prefill", "bootstrap_room": boot.room}
        req.pd_truth = truth
        self.bootstrap_queue += 1
        try:
            timeout = sim.config.sim_pd_bootstrap_timeout_s
            await asyncio.wait_for(state.registered.wait(), timeout)
        except asyncio.TimeoutError:
            return self._bootstrap_failed(req, boot.room, state)
        except asyncio.CancelledError:
            self._fail_room(boot.room, state, "the prefill request was cancelled")
            raise
        finally:
            self.bootstrap_queue -= 1
        now = _stamp()
        truth.update(bootstrap_done_ns=now, decode_worker_id=state.decode.get("decode_worker_id"))
        self.stats.bootstrap_ms.observe((now - req.arrival_ns) / 1e6)
        self.stats.stage("prefill_bootstrap", (now - req.arrival_ns) / 1e9)
        flow = sim.submit(req)  # the scheduler sees it only after the handshake (SGLang's bootstrap queue)
        try:
            while not (req.finished or req.aborted):
                await flow.event.wait()
                flow.event.clear()
        except asyncio.CancelledError:
            flow.status = "aborted"
            sim.abort(req.rid)
            self._fail_room(boot.room, state, "the prefill request was aborted")
            sim.finish_flow(flow)
            raise
        if req.aborted:
            flow.status = "aborted"
            self._fail_room(boot.room, state, "the prefill request was aborted")
            sim.finish_flow(flow)
            return error_response(500, f"Prefill of request {req.rid} aborted")
        return await self._transfer(flow, state, truth, stream, fmt)

    async def _transfer(
        self, flow: Flow, state: Room, truth: dict[str, Any], stream: bool, fmt: StreamFormat
    ) -> web.StreamResponse:
        sim, req = self.sim, flow.req
        prefill_end = req.first_token_ns or _stamp()
        tokens = len(req.input_ids)
        start = max(prefill_end, self.link_free_ns)
        self.link_free_ns = start + int(self.link.busy_s(tokens) * 1e9)
        end = start + int(self.link.transfer_s(tokens) * 1e9)
        nbytes = tokens * self.link.bytes_per_token
        truth.update(transfer_start_ns=start, transfer_end_ns=end, kv_transfer_bytes=nbytes)
        outcome = {
            "handoff_token": req.output_ids[0] if req.output_ids else 0,
            "prefill_worker_id": sim.worker_id,
            "prefill_rid": req.rid,
            "prefill_arrival_ns": req.arrival_ns,
            "prefill_bootstrap_done_ns": truth["bootstrap_done_ns"],
            "prefill_admitted_ns": req.admitted_ns,
            "prefill_end_ns": prefill_end,
            "prefill_cached_tokens": req.cached_tokens,
            "transfer_start_ns": start,
            "transfer_end_ns": end,
            "kv_transfer_bytes": nbytes,
            "kv_transfer_modelled_s": self.link.transfer_s(tokens),
        }
        if not state.outcome.done():
            state.outcome.set_result(outcome)
        self.inflight += 1
        try:
            delay_ns = end - _stamp()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / 1e9)
        finally:
            self.inflight -= 1
            self.stats.stage("prefill_transfer_kv_cache", (end - prefill_end) / 1e9)
            flow.last_write_ns = flow.first_write_ns = _stamp()
            sim.finish_flow(flow)
        if not stream:
            return web.json_response(fmt.final_body(sim, flow))
        body = fmt.chunk(sim, flow, len(req.output_ids), True) + b"data: [DONE]\n\n"
        return web.Response(body=body, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    def _fail_room(self, room: int, state: Room, message: str) -> None:
        if not state.outcome.done():
            state.outcome.set_exception(RuntimeError(message))
            state.outcome.exception()  # retrieved: no "never retrieved" warning if no decode waits
        if not state.registered.is_set():
            self.rooms.pop(room, None)

    def _bootstrap_failed(self, req: SimRequest, room: int, state: Room) -> web.Response:
        elapsed = (_stamp() - req.arrival_ns) / 1e9
        message = (
            f"Prefill bootstrap failed for request rank=0 req.rid='{req.rid}' req.bootstrap_room={room} with "
            f"exception KVTransferError(bootstrap_room={room}): Request {room} timed out after {elapsed:.1f}s "
            "in KVPoll.Bootstrapping"
        )
        self.stats.bootstrap_failed += 1
        self._fail_room(room, state, message)
        self.sim.write_failure(req, "bootstrap_failed", message)
        return error_response(500, message)


class DecodeRole(PDRole):
    """The decode worker: prealloc queue, transfer queue (rendezvous with the prefill), then decoding."""

    mode = "decode"

    def __init__(self, sim: SimServer) -> None:
        super().__init__(sim)
        self.prealloc: deque[tuple[SimRequest, asyncio.Future[None]]] = deque()
        self.transferring = 0
        self._session: aiohttp.ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def stop(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def gauges(self) -> dict[str, float]:
        e = self.sim.engine
        pending = sum(r.private_tokens for r in e.prebuilt) + sum(r.private_tokens for r, _ in self.prealloc)
        return {
            "num_decode_prealloc_queue_reqs": len(self.prealloc),
            # waiting for the handshake's answer, or for the modelled end of a transfer under way
            "num_decode_transfer_queue_reqs": self.transferring
            + sum(1 for r in e.prebuilt if (r.kv_ready_ns or 0) > _stamp()),
            "pending_prealloc_token_usage": round(pending / e.config.max_total_tokens, 6),
        }

    def after_step(self) -> None:
        self.pump()

    def pump(self) -> None:
        """Grant preallocation to queued requests in FIFO order while the pool has room."""
        engine = self.sim.engine
        while self.prealloc:
            req, granted = self.prealloc[0]
            if granted.done():
                self.prealloc.popleft()
                continue
            if not engine.try_prealloc(req):
                return
            self.prealloc.popleft()
            granted.set_result(None)

    async def _admit(
        self, request: web.Request, req: SimRequest, boot: Bootstrap, stream: bool, fmt: StreamFormat
    ) -> web.StreamResponse | None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.prealloc.append((req, granted))
        self.pump()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done():
                self.sim.engine.release_prealloc(req)
            granted.cancel()
            raise
        prealloc_ns = _stamp()
        self.stats.stage("decode_prepare", (prealloc_ns - req.arrival_ns) / 1e9)
        self.transferring += 1
        try:
            outcome = await self._rendezvous(req, boot)
        except asyncio.CancelledError:
            self.sim.engine.release_prealloc(req)
            self.pump()
            raise
        finally:
            self.transferring -= 1
        now = _stamp()
        truth = {"role": "decode", "bootstrap_room": boot.room, "prealloc_done_ns": prealloc_ns}
        req.pd_truth = truth
        if isinstance(outcome, str):
            self.stats.transfer_failed += 1
            self.sim.engine.release_prealloc(req)
            self.pump()
            self.sim.write_failure(req, "transfer_failed", outcome)
            return error_response(500, outcome)
        truth.update({k: v for k, v in outcome.items() if k != "handoff_token"})
        end_ns = int(outcome["transfer_end_ns"])
        self.stats.transfer(float(outcome["kv_transfer_bytes"]), int(outcome["transfer_start_ns"]), end_ns)
        self.stats.stage("decode_transferred", (max(end_ns, now) - prealloc_ns) / 1e9)
        req.handoff_token = int(outcome["handoff_token"])
        req.kv_ready_ns = max(end_ns, prealloc_ns)  # the scheduler takes it at the first step from then on
        return None

    async def _rendezvous(self, req: SimRequest, boot: Bootstrap) -> dict[str, Any] | str:
        """Register the room at the prefill's bootstrap server and wait for its KV; an error text if it
        fails (SGLang's message)."""
        assert self._session is not None
        timeout_s = self.sim.config.sim_pd_waiting_timeout_s
        url = f"http://{boot.host}:{boot.port}" + ROOM_PATH.format(room=boot.room)
        started = _stamp()
        cause: str
        try:
            async with self._session.post(
                url,
                json={"decode_worker_id": self.sim.worker_id, "rid": req.rid},
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status == 200 and isinstance(data, dict) and "transfer_end_ns" in data:
                    return data
                cause = str(data.get("error") if isinstance(data, dict) else data)
        except asyncio.TimeoutError:
            elapsed = (_stamp() - started) / 1e9
            cause = f"Request {boot.room} timed out after {elapsed:.1f}s in KVPoll.WaitingForInput"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            cause = f"cannot reach the prefill bootstrap server at {boot.host}:{boot.port} ({exc})"
        return (
            f"Decode transfer failed for request rank=0 req.rid='{req.rid}' req.bootstrap_room={boot.room} "
            f"with exception KVTransferError(bootstrap_room={boot.room}): {cause}"
        )


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="OK")


def make_role(sim: SimServer) -> PDRole | None:
    """The PD role of ``--disaggregation-mode`` (None for ``null``)."""
    mode = sim.config.disaggregation_mode
    if mode == "prefill":
        return PrefillRole(sim)
    if mode == "decode":
        return DecodeRole(sim)
    return None
