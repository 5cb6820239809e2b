"""RoutingProxy: our Python router — an aiohttp reverse proxy that asks a policy for each request's
worker, streams the response through unchanged, and adds ``X-Worker-Id``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ...http_api import API_PATHS, auth_headers
from .base import BaseRoutingPolicy, RoutingRequest, WorkerMetrics

__all__ = ["RoutingProxy", "routing_text"]

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}
_GAUGES = {
    "sglang:num_running_reqs": "running",
    "sglang:num_queue_reqs": "queued",
    "sglang:token_usage": "memory_usage",
    "sglang:cache_hit_rate": "cache_hit_rate",
}


def routing_text(path: str, body: dict[str, Any]) -> str:
    """The text prefix-aware policies match on (same choice as sglang-router)."""
    if path.endswith("/chat/completions"):
        return " ".join(str(m.get("content") or "") for m in body.get("messages") or [] if isinstance(m, dict))
    if path.endswith("/completions"):
        prompt = body.get("prompt", "")
        return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
    if isinstance(body.get("text"), str):
        return str(body["text"])
    return " ".join(map(str, body.get("input_ids") or []))


class _Worker:
    def __init__(self, worker_id: str, url: str) -> None:
        self.id = worker_id
        self.url = url.rstrip("/")
        self.m = WorkerMetrics()
        self.latency_ewma_s = 0.0
        self.decision_ns = 0
        self.decisions = 0
        self._tokens: tuple[float, float] | None = None

    def refresh(self, text: str) -> None:
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                values[s.name] = values.get(s.name, 0.0) + float(s.value)
        for name, attr in _GAUGES.items():
            if name in values:
                setattr(self.m, attr, values[name])
        tokens = values.get("sglang:generation_tokens_total")
        now = time.monotonic()
        if tokens is not None:
            if self._tokens is not None and now > self._tokens[0]:
                self.m.throughput = max(0.0, (tokens - self._tokens[1]) / (now - self._tokens[0]))
            self._tokens = (now, tokens)
        self.m.healthy = True
        self.m.queue_depth = self.m.in_flight + self.m.queued


class RoutingProxy:
    """``async with RoutingProxy({"worker_0": url0, ...}, policy) as proxy:`` then send to ``proxy.url``."""

    def __init__(
        self,
        workers: Mapping[str, str],
        policy: BaseRoutingPolicy,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_interval_s: float = 0.5,
        api_key: str | None = None,
    ) -> None:
        self.workers = {wid: _Worker(wid, url) for wid, url in workers.items()}
        self.policy = policy
        self.host = host
        self.port = port
        self.metrics_interval_s = metrics_interval_s
        self.api_key = api_key
        self.retries = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._refresh_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL clients send to."""
        return f"http://{self.host}:{self.port}"

    def server_metrics(self) -> dict[str, WorkerMetrics]:
        """What the policy sees: healthy workers only (all of them if none is healthy)."""
        healthy = {w.id: w.m for w in self.workers.values() if w.m.healthy}
        return healthy or {w.id: w.m for w in self.workers.values()}

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-worker bookkeeping, including the mean time spent in ``route_request`` (µs)."""
        return {
            w.id: {
                "requests": w.m.requests_total,
                "errors": w.m.errors_total,
                "in_flight": w.m.in_flight,
                "healthy": w.m.healthy,
                "mean_decision_us": w.decision_ns / w.decisions / 1e3 if w.decisions else 0.0,
            }
            for w in self.workers.values()
        }

    async def start(self) -> None:
        """Bind and start serving; starts the background metrics refresh."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
        )
        app = web.Application(client_max_size=64 * 2**20)
        for path in API_PATHS.values():
            app.router.add_post(path, self._route)
        app.router.add_get("/health", lambda _r: self._ok())
        app.router.add_get("/readiness", self._readiness)
        app.router.add_get("/workers", self._workers)
        app.router.add_get("/v1/models", self._forward_get)
        app.router.add_get("/server_info", self._forward_get)
        app.router.add_post("/flush_cache", self._flush)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await self._refresh_all()
        self._refresh_task = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        """Stop serving and close connections."""
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh_task
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> RoutingProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ metrics refresh
    async def _refresh_one(self, w: _Worker) -> None:
        assert self._session is not None
        headers = auth_headers(self.api_key)
        try:
            async with self._session.get(
                f"{w.url}/metrics", headers=headers, timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                text = await resp.text()
            w.refresh(text) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            w.m.healthy = False

    async def _refresh_all(self) -> None:
        await asyncio.gather(*(self._refresh_one(w) for w in self.workers.values()))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.metrics_interval_s)
            await self._refresh_all()

    # ------------------------------------------------------------------ routing
    def _choose(self, request: RoutingRequest, exclude: set[str]) -> _Worker:
        view = {k: v for k, v in self.server_metrics().items() if k not in exclude} or {
            w.id: w.m for w in self.workers.values() if w.id not in exclude
        }
        t0 = time.perf_counter_ns()
        wid = self.policy.route_request(request, view)
        worker = self.workers.get(wid)
        if worker is None:
            raise web.HTTPInternalServerError(text=f"policy returned unknown worker {wid!r}")
        worker.decision_ns += time.perf_counter_ns() - t0
        worker.decisions += 1
        return worker

    async def _route(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON body"}}, status=400)
        rreq = RoutingRequest(
            request.path,
            routing_text(request.path, body if isinstance(body, dict) else {}),
            request.headers.get("X-Request-Id"),
            body if isinstance(body, dict) else {},
            request.headers,
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        tried: set[str] = set()
        while True:
            worker = self._choose(rreq, tried)
            tried.add(worker.id)
            try:
                return await self._forward(request, worker, rreq, raw, headers)
            except aiohttp.ClientConnectorError:
                worker.m.healthy = False
                worker.m.errors_total += 1
                if len(tried) >= len(self.workers):
                    return web.json_response({"error": {"message": "no worker reachable"}}, status=503)
                self.retries += 1

    async def _forward(
        self, request: web.Request, worker: _Worker, rreq: RoutingRequest, raw: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        assert self._session is not None
        start = time.monotonic()
        worker.m.in_flight += 1
        worker.m.queue_depth = worker.m.in_flight + worker.m.queued
        ok = False
        try:
            async with self._session.post(worker.url + request.path, data=raw, headers=headers) as up:
                self.policy.on_request_started(worker.id, rreq)
                resp = web.StreamResponse(
                    status=up.status,
                    headers={
                        "Content-Type": up.headers.get("Content-Type", "application/json"),
                        "X-Worker-Id": worker.id,
                    },
                )
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                ok = up.status == 200
                return resp
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            worker.m.errors_total += 1
            raise
        finally:
            latency = time.monotonic() - start
            worker.m.in_flight -= 1
            worker.m.requests_total += 1
            worker.m.queue_depth = worker.m.in_flight + worker.m.queued
            worker.latency_ewma_s = (
                latency if worker.latency_ewma_s == 0 else 0.8 * worker.latency_ewma_s + 0.2 * latency
            )
            worker.m.latency = max(worker.latency_ewma_s, 1e-3)
            self.policy.on_request_finished(worker.id, rreq, ok, latency)

    # ------------------------------------------------------------------ admin
    async def _ok(self) -> web.Response:
        return web.Response(text="ok")

    async def _readiness(self, _request: web.Request) -> web.Response:
        healthy = sum(1 for w in self.workers.values() if w.m.healthy)
        return web.json_response(
            {
                "status": "ready" if healthy else "not ready",
                "healthy_workers": healthy,
                "total_workers": len(self.workers),
            },
            status=200 if healthy else 503,
        )

    async def _workers(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "workers": [
                    {"id": w.id, "url": w.url, "is_healthy": w.m.healthy, "load": w.m.in_flight}
                    for w in self.workers.values()
                ],
                "total": len(self.workers),
            }
        )

    async def _forward_get(self, request: web.Request) -> web.Response:
        assert self._session is not None
        worker = next((w for w in self.workers.values() if w.m.healthy), next(iter(self.workers.values())))
        async with self._session.get(worker.url + request.path) as up:
            return web.Response(body=await up.read(), status=up.status, content_type=up.content_type)

    async def _flush(self, request: web.Request) -> web.Response:
        assert self._session is not None
        codes = []
        for w in self.workers.values():
            try:
                async with self._session.post(f"{w.url}/flush_cache?{request.query_string}") as up:
                    codes.append(up.status)
            except aiohttp.ClientError:
                codes.append(503)
        return web.Response(status=200 if all(c == 200 for c in codes) else 400, text=f"flush: {codes}")
