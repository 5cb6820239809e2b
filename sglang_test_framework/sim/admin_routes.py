"""Non-generation routes: health, info, models, loads, flush, abort, metrics."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from .server import SimServer

__all__ = ["add_admin_routes"]


def add_admin_routes(app: web.Application, key: web.AppKey[SimServer]) -> None:
    """Register every non-generation route on ``app``."""

    def sim_of(request: web.Request) -> SimServer:
        return request.app[key]

    async def health(request: web.Request) -> web.Response:
        sim = sim_of(request)
        return web.Response(status=200 if sim.healthy() else 503)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(status=200 if sim_of(request).healthy() else 503)

    async def model_info(request: web.Request) -> web.Response:
        sim = sim_of(request)
        return web.json_response(
            {
                "model_path": sim.config.model_path,
                "served_model_name": sim.model_name,
                "tokenizer_path": sim.config.tokenizer_path or sim.config.model_path,
                "is_generation": True,
                "disaggregation_mode": sim.config.disaggregation_mode,
                "preferred_sampling_params": None,
                "weight_version": "default",
                "has_image_understanding": False,
                "has_audio_understanding": False,
                "model_type": "llama",
                "architectures": ["LlamaForCausalLM"],
            }
        )

    async def server_info(request: web.Request) -> web.Response:
        return web.json_response(sim_of(request).server_info())

    async def models(request: web.Request) -> web.Response:
        sim = sim_of(request)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": sim.model_name,
                        "object": "model",
                        "created": int(sim.start_wall),
                        "owned_by": "sglang",
                        "root": sim.config.model_path,
                        "max_model_len": sim.context_len,
                    }
                ],
            }
        )

    async def loads(request: web.Request) -> web.Response:
        sim = sim_of(request)
        e = sim.engine
        g = sim.gauges()
        load: dict[str, Any] = {
            "dp_rank": 0,
            "num_running_reqs": g["num_running_reqs"],
            "num_waiting_reqs": g["num_queue_reqs"],
            "num_used_tokens": e.used_tokens,
            "num_total_tokens": e.config.max_total_tokens,
            "max_total_num_tokens": e.config.max_total_tokens,
            "max_running_requests": e.config.max_running_requests,
            "token_usage": g["token_usage"],
            "gen_throughput": g["gen_throughput"],
            "cache_hit_rate": g["cache_hit_rate"],
            "utilization": g["utilization"],
            "num_waiting_uncached_tokens": sum(len(r.input_ids) for r in e.waiting),
        }
        if sim.pd is not None:
            load["disaggregation"] = sim.pd.loads_section()
        return web.json_response(
            {
                # ISO 8601 like SGLang's: SMG rejects a numeric timestamp and falls back to /metrics.
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "version": "0.5.23-sim",
                "accelerator": "sim",
                "num_accelerators": sim.config.tp_size,
                "loads": [load],
            }
        )

    async def get_load(request: web.Request) -> web.Response:
        sim = sim_of(request)
        fmt = sim.config.sim_get_load_format
        e = sim.engine
        if fmt == "absent":
            return web.Response(status=404, text="Not Found")
        tokens = e.used_tokens
        if fmt == "legacy":
            return web.json_response({"load": tokens})
        return web.json_response(
            [
                {
                    "dp_rank": 0,
                    "num_reqs": len(e.running) + len(e.waiting),
                    "num_waiting_reqs": len(e.waiting),
                    "num_tokens": tokens,
                }
            ]
        )

    async def flush_cache(request: web.Request) -> web.Response:
        sim = sim_of(request)
        timeout_s = float(request.query.get("timeout", "0") or 0)
        deadline = time.monotonic() + timeout_s
        while not sim.engine.flush_cache():
            if time.monotonic() >= deadline:
                return web.Response(status=400, text="Cache not flushed: requests are running or waiting.\n")
            await asyncio.sleep(0.05)
        return web.Response(text="Cache flushed.\nPlease check backend logs for more details.\n")

    async def abort_request(request: web.Request) -> web.Response:
        sim = sim_of(request)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        n = sim.abort(None if body.get("abort_all") else body.get("rid"))
        return web.json_response({"aborted": n})

    async def metrics(request: web.Request) -> web.Response:
        sim = sim_of(request)
        if not sim.config.enable_metrics:
            return web.Response(status=404, text="metrics are disabled; start with --enable-metrics")
        c = sim.engine.counters
        pd = sim.pd
        text = sim.metrics.render(
            {**sim.gauges(), **(pd.gauges() if pd is not None else {})},
            {
                "num_retracted_requests_total": c["num_retracted_requests_total"],
                "num_retracted_input_tokens_total": c["retracted_input_tokens"],
                "evicted_tokens_total": c["evicted_tokens"],
                "load_back_tokens_total": c["load_back_tokens"],
            },
            {
                "prefill_compute": c["prefill_compute_tokens"],
                "prefill_cache": c["prefill_cache_tokens"],
                "decode": c["decode_tokens"],
            },
        )
        if pd is not None:
            labels = f'model_name="{sim.model_name}",engine_type="{pd.mode}",tp_rank="0",pp_rank="0",moe_ep_rank="0"'
            text += "\n".join(pd.stats.lines(labels)) + "\n"
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    r = app.router
    for path in ("/health", "/health_generate"):
        r.add_get(path, health)
    r.add_get("/ready", ready)
    r.add_get("/ping", ping)
    for path in ("/model_info", "/get_model_info"):
        r.add_get(path, model_info)
    for path in ("/server_info", "/get_server_info"):
        r.add_get(path, server_info)
    r.add_get("/v1/models", models)
    r.add_get("/v1/loads", loads)
    r.add_get("/get_load", get_load)
    r.add_route("*", "/flush_cache", flush_cache)
    r.add_post("/abort_request", abort_request)
    r.add_get("/metrics", metrics)
