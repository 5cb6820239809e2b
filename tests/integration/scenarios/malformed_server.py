"""A tiny SGLang-like server whose ``/generate`` streams a malformed chunk for every other request.

Run as ``python malformed_server.py PORT``. Request i (by arrival order, warmup included) gets one of
``BAD`` in turn when i is odd and a well-formed 4-token stream when i is even.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

from aiohttp import web

BAD: list[tuple[str, Any]] = [
    ("meta_info", ["not", "an", "object"]),
    ("completion_tokens", "abc"),
    ("cached_tokens", "12"),
    ("completion_tokens", -3),
    ("deep", None),
]


def _event(i: int, n: int) -> dict[str, Any]:
    meta = {"id": "x", "prompt_tokens": 8, "completion_tokens": i, "cached_tokens": 0}
    meta["finish_reason"] = {"type": "length", "length": n} if i == n else None
    return {"text": "w" * i, "meta_info": meta}


def _chunk(data: object) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def make_app() -> web.Application:
    counter = itertools.count()

    async def generate(request: web.Request) -> web.StreamResponse:
        index = next(counter)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_chunk(_event(1, 4)))
        if index % 2:
            field, value = BAD[(index // 2) % len(BAD)]
            bad = _event(2, 4)
            if field == "meta_info":
                bad["meta_info"] = value
            elif field == "deep":
                await resp.write(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n")
                return resp
            else:
                bad["meta_info"][field] = value
            await resp.write(_chunk(bad))
            return resp
        for i in range(2, 5):
            await resp.write(_chunk(_event(i, 4)))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/generate", generate)
    app.router.add_get("/health_generate", ok)
    app.router.add_get("/health", ok)
    app.router.add_get("/server_info", ok)
    app.router.add_post("/flush_cache", ok)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
