"""Response bodies and SSE chunks of the three generation APIs (SGLang native, completions, chat)."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from .server import Flow, SimServer

__all__ = ["StreamFormat", "chat_format", "completion_format", "generate_format"]


class StreamFormat(Protocol):
    """How one API renders a request's state."""

    def head(self, sim: SimServer, flow: Flow) -> bytes | None: ...

    def chunk(self, sim: SimServer, flow: Flow, n: int, done: bool) -> bytes: ...

    def final_body(self, sim: SimServer, flow: Flow) -> dict[str, Any]: ...


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _words(sim: SimServer, ids: list[int], start: int, end: int) -> str:
    text = " ".join(sim.tokenizer.word(t) for t in ids[start:end])
    return (" " + text) if start > 0 and text else text


def _meta(sim: SimServer, flow: Flow, n: int, done: bool) -> dict[str, Any]:
    req = flow.req
    meta: dict[str, Any] = {
        "id": req.rid,
        "finish_reason": req.finish_reason if done else None,
        "prompt_tokens": len(req.input_ids),
        "completion_tokens": n,
        "cached_tokens": req.cached_tokens,
        "reasoning_tokens": 0,
        "weight_version": "default",
        "num_retractions": req.retractions,
    }
    if sim.config.enable_metrics and req.admitted_ns is not None:
        meta["queue_time"] = (req.admitted_ns - req.arrival_ns) / 1e9
    if done:
        meta["e2e_latency"] = (time.monotonic_ns() - req.arrival_ns) / 1e9
    return meta


class generate_format:
    """``/generate``: cumulative ``text`` and ``output_ids`` (deltas with --incremental-streaming-output).

    The cumulative JSON of text and ids is kept as growing byte buffers, so one event costs a memcpy of
    the output so far rather than re-encoding it (the simulator's vocabulary needs no JSON escaping).
    """

    def __init__(self, incremental: bool = False) -> None:
        self.incremental = incremental
        self._text = bytearray()
        self._ids = bytearray()
        self._upto = 0
        self._meta_head: bytes | None = None

    def _extend(self, sim: SimServer, flow: Flow, n: int) -> None:
        if n > self._upto:
            ids = flow.req.output_ids[self._upto : n]
            words = " ".join(sim.tokenizer.word(t) for t in ids)
            self._text += ((b" " if self._upto else b"") + words.encode()) if words else b""
            self._ids += ((b"," if self._upto else b"") + ",".join(map(str, ids)).encode()) if ids else b""
            self._upto = n

    def head(self, sim: SimServer, flow: Flow) -> bytes | None:
        return None

    def _meta_bytes(self, sim: SimServer, flow: Flow, n: int, done: bool) -> bytes:
        """``meta_info`` JSON; without ``--enable-metrics`` non-final chunks use a per-request template
        (the hot path)."""
        req = flow.req
        if done or sim.config.enable_metrics:
            return json.dumps(_meta(sim, flow, n, done), separators=(",", ":")).encode()
        if self._meta_head is None:
            self._meta_head = b'{"id":' + json.dumps(req.rid).encode() + b',"finish_reason":null,"prompt_tokens":%d'
            self._meta_head %= len(req.input_ids)
        return self._meta_head + (
            b',"completion_tokens":%d,"cached_tokens":%d,"reasoning_tokens":0,"weight_version":"default",'
            b'"num_retractions":%d}' % (n, req.cached_tokens, req.retractions)
        )

    def chunk(self, sim: SimServer, flow: Flow, n: int, done: bool) -> bytes:
        meta = self._meta_bytes(sim, flow, n, done)
        if self.incremental:
            ids = flow.req.output_ids[flow.emitted : n]
            text = json.dumps(_words(sim, flow.req.output_ids, flow.emitted, n)).encode()
            out_ids = ",".join(map(str, ids)).encode()
        else:
            self._extend(sim, flow, n)
            text, out_ids = b'"' + bytes(self._text) + b'"', bytes(self._ids)
        return b'data: {"text":' + text + b',"output_ids":[' + out_ids + b'],"meta_info":' + meta + b"}\n\n"

    def final_body(self, sim: SimServer, flow: Flow) -> dict[str, Any]:
        n = len(flow.req.output_ids)
        return {
            "text": _words(sim, flow.req.output_ids, 0, n),
            "output_ids": flow.req.output_ids,
            "meta_info": _meta(sim, flow, n, True),
        }


def _usage(sim: SimServer, flow: Flow, n: int) -> dict[str, Any]:
    prompt = len(flow.req.input_ids)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": n,
        "total_tokens": prompt + n,
        "reasoning_tokens": 0,
    }
    if sim.config.enable_cache_report:
        usage["prompt_tokens_details"] = {"cached_tokens": flow.req.cached_tokens}
    return usage


def _finish_reason(flow: Flow) -> str | None:
    reason = flow.req.finish_reason or {}
    kind = reason.get("type")
    return {"length": "length", "stop": "stop", "abort": "abort"}.get(str(kind)) if kind else None


class _OpenAIFormat:
    object_name = "text_completion"

    def __init__(self, include_usage: bool = False, continuous: bool = False) -> None:
        self.include_usage = include_usage
        self.continuous = continuous
        self.created = int(time.time())

    def _choice(self, delta: str, finish: str | None) -> dict[str, Any]:
        return {"index": 0, "text": delta, "logprobs": None, "finish_reason": finish, "matched_stop": None}

    def _obj(self, sim: SimServer, flow: Flow, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": flow.req.rid,
            "object": self.object_name,
            "created": self.created,
            "model": sim.model_name,
            "choices": choices,
        }

    def head(self, sim: SimServer, flow: Flow) -> bytes | None:
        return None

    def chunk(self, sim: SimServer, flow: Flow, n: int, done: bool) -> bytes:
        out = b""
        if n > flow.emitted:
            obj = self._obj(sim, flow, [self._choice(_words(sim, flow.req.output_ids, flow.emitted, n), None)])
            if self.continuous:
                obj["usage"] = _usage(sim, flow, n)
            out += _event(obj)
        if done:
            obj = self._obj(sim, flow, [self._choice("", _finish_reason(flow))])
            if self.continuous:
                obj["usage"] = _usage(sim, flow, n)
            out += _event(obj)
            if self.include_usage:
                out += _event({**self._obj(sim, flow, []), "usage": _usage(sim, flow, n)})
        return out

    def final_body(self, sim: SimServer, flow: Flow) -> dict[str, Any]:
        n = len(flow.req.output_ids)
        text = _words(sim, flow.req.output_ids, 0, n)
        return {**self._obj(sim, flow, [self._final_choice(text, _finish_reason(flow))]), "usage": _usage(sim, flow, n)}

    def _final_choice(self, text: str, finish: str | None) -> dict[str, Any]:
        return self._choice(text, finish)


class completion_format(_OpenAIFormat):
    """``/v1/completions``: delta ``choices[0].text``."""


class chat_format(_OpenAIFormat):
    """``/v1/chat/completions``: a role chunk, then ``delta.content`` chunks, then a finish chunk."""

    object_name = "chat.completion.chunk"

    def _choice(self, delta: str, finish: str | None) -> dict[str, Any]:
        return {
            "index": 0,
            "delta": {"content": delta} if delta or finish is None else {},
            "logprobs": None,
            "finish_reason": finish,
            "matched_stop": None,
        }

    def head(self, sim: SimServer, flow: Flow) -> bytes | None:
        return _event(
            self._obj(
                sim,
                flow,
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}],
            )
        )

    def _final_choice(self, text: str, finish: str | None) -> dict[str, Any]:
        return {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish,
        }

    def final_body(self, sim: SimServer, flow: Flow) -> dict[str, Any]:
        body = super().final_body(sim, flow)
        body["object"] = "chat.completion"
        return body
