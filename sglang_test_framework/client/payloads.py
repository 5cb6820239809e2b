"""Per-API request bodies and field extractors (the only API-specific code of the client).

The extractors check the type of every field they read: a server that sends ``completion_tokens`` as a
string or ``choices`` as an object gets a :class:`ChunkError` naming the field, so a successful record only
ever holds well-typed values. JSON decodes to exact builtin types, so ``type(x) is int`` is both the
cheapest check and the one that rejects ``bool``.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..records import Request

__all__ = [
    "ChunkError",
    "ChunkInfo",
    "Extractor",
    "ServerTimings",
    "build_payload",
    "dump_json",
    "extract_chunk",
    "extractor_for",
    "load_json",
    "server_timings",
]

# Token counts above this are nonsense and would overflow the int64/float columns of the summary.
MAX_TOKEN_COUNT = 2**53
_COUNT = "an int ≥ 0"
_MISSING: Any = object()
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 3


def build_payload(
    request: Request,
    api_type: str,
    stream: bool,
    model: str,
    ignore_eos: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON body for one request."""
    if api_type == "sglang":
        body: dict[str, Any] = {
            "sampling_params": {"max_new_tokens": request.output_len, "temperature": 0.0, "ignore_eos": ignore_eos},
            "stream": stream,
            "rid": request.request_id,
        }
        if request.prompt_token_ids is not None:
            body["input_ids"] = request.prompt_token_ids
        else:
            body["text"] = request.prompt_text()
    else:
        body = {"model": model, "temperature": 0.0, "stream": stream, "ignore_eos": ignore_eos}
        if stream:
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        if api_type == "openai":
            body["prompt"] = request.prompt_text()
            body["max_tokens"] = request.output_len
        else:
            body["messages"] = request.messages or [{"role": "user", "content": request.prompt_text()}]
            body["max_completion_tokens"] = request.output_len
    if extra:
        body.update(extra)
    return body


def load_json(data: bytes) -> Any:
    """``data`` decoded as JSON: orjson (several times faster than ``json`` on every chunk), and where
    orjson refuses the text, the standard library, so that the result and the error stay ``json.loads``'s:
    it accepts what orjson does not (``NaN``, integers beyond 64 bits) and names the problem
    (``UnicodeDecodeError``, ``JSONDecodeError``). Unlike ``json``, any nesting depth decodes (no
    ``RecursionError``); the extractors then reject a value of the wrong type as usual."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dump_json(body: Any) -> bytes:
    """``body`` as UTF-8 JSON bytes: orjson, or ``json.dumps`` for what orjson refuses (non-string keys,
    integers beyond 64 bits), which also raises the standard error for what neither can encode."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body).encode()


class ChunkError(ValueError):
    """A response field has the wrong type or value; the message names the field and what was expected."""


def _show(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    return f"{_repr.repr(value)} ({type(value).__name__})"


def _bad(field: str, value: Any, expected: str) -> ChunkError:
    return ChunkError(f"{field} is {_show(value)}, expected {expected}")


def _count(value: Any, field: str) -> int:
    """``value`` if it is a token count (an int in [0, MAX_TOKEN_COUNT], not a bool), else ChunkError."""
    if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    if type(value) is int and value > 0:
        raise _bad(field, value, f"{_COUNT} and ≤ 2**53")
    raise _bad(field, value, _COUNT)


@dataclass(slots=True)
class ChunkInfo:
    """What one decoded event says. ``total_tokens`` is a running total when the API reports one
    (sglang ``completion_tokens``, OpenAI usage), else None and ``new_tokens`` counts this chunk."""

    total_tokens: int | None = None
    new_tokens: int = 0
    cached_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None


Extractor = Callable[[Any], ChunkInfo]


def _finish(reason: Any, field: str) -> str | None:
    if reason is None or type(reason) is str:
        return reason
    if type(reason) is dict:
        kind = reason.get("type")
        if type(kind) is str:
            return kind
        raise _bad(field + ".type", reason.get("type", _MISSING), "a string")
    raise _bad(field, reason, "a string, an object with a 'type' or null")


def _error_event(obj: dict[str, Any]) -> ChunkInfo:
    err = obj["error"]
    msg = err.get("message", err) if type(err) is dict else err
    return ChunkInfo(error=(msg if type(msg) is str else _repr.repr(msg))[:500])


def _not_an_object(obj: Any) -> ChunkError:
    return ChunkError(f"event is {_show(obj)}, expected a JSON object")


def _optional_str(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise _bad(field, value, "a string or null")


def extract_sglang(obj: Any) -> ChunkInfo:
    """``/generate``: cumulative ``meta_info.completion_tokens`` (required), optional ``cached_tokens``."""
    if type(obj) is not dict:
        raise _not_an_object(obj)
    if obj.get("error"):
        return _error_event(obj)
    meta = obj.get("meta_info", _MISSING)
    if type(meta) is not dict:
        raise _bad("meta_info", meta, "an object")
    total = meta.get("completion_tokens", _MISSING)
    if type(total) is not int or not 0 <= total <= MAX_TOKEN_COUNT:  # inlined _count: read on every chunk
        _count(total, "meta_info.completion_tokens")  # raises
    cached = meta.get("cached_tokens")
    if cached is not None:
        _count(cached, "meta_info.cached_tokens")
    prompt = meta.get("prompt_tokens")
    if prompt is not None:
        _count(prompt, "meta_info.prompt_tokens")
    text = obj.get("text")
    if text is not None and type(text) is not str:
        raise _bad("text", text, "a string")
    reason = meta.get("finish_reason")
    return ChunkInfo(
        total,
        0,
        cached,
        reason if reason is None else _finish(reason, "meta_info.finish_reason"),
        None,
        meta,
    )


def _usage(info: ChunkInfo, usage: Any) -> None:
    if type(usage) is not dict:
        raise _bad("usage", usage, "an object or null")
    total = usage.get("completion_tokens")
    if total is not None:
        info.total_tokens = _count(total, "usage.completion_tokens")
    prompt = usage.get("prompt_tokens")
    if prompt is not None:
        _count(prompt, "usage.prompt_tokens")
    details = usage.get("prompt_tokens_details")
    if details is not None:
        if type(details) is not dict:
            raise _bad("usage.prompt_tokens_details", details, "an object or null")
        cached = details.get("cached_tokens")
        if cached is not None:
            info.cached_tokens = _count(cached, "usage.prompt_tokens_details.cached_tokens")


def _text_of(choice: dict[str, Any]) -> str:
    """The text of a choice without a dict ``delta``: a completions ``text`` or a chat ``message``."""
    delta = choice.get("delta")
    if delta is not None:
        raise _bad("choices[0].delta", delta, "an object")
    message = choice.get("message")
    if message is not None:
        if type(message) is not dict:
            raise _bad("choices[0].message", message, "an object")
        return _optional_str(message, "content", "choices[0].message.content") or ""
    return _optional_str(choice, "text", "choices[0].text") or ""


def extract_openai(obj: Any) -> ChunkInfo:
    """``/v1/completions`` and ``/v1/chat/completions``: ``usage`` totals, else one token per text chunk."""
    if type(obj) is not dict:
        raise _not_an_object(obj)
    if obj.get("error"):
        return _error_event(obj)
    info = ChunkInfo()
    usage = obj.get("usage")
    if usage is not None:
        _usage(info, usage)
    choices = obj.get("choices")
    if choices is None:
        return info
    if type(choices) is not list:
        raise _bad("choices", choices, "a list")
    if not choices:
        return info
    choice = choices[0]
    if type(choice) is not dict:
        raise _bad("choices[0]", choice, "an object")
    delta = choice.get("delta")
    if type(delta) is dict:  # a chat chunk (the hot path, inlined)
        text = delta.get("content")
        if type(text) is not str:
            text = _optional_str(delta, "content", "choices[0].delta.content")
        if delta.get("reasoning_content") is not None:
            text = (text or "") + (
                _optional_str(delta, "reasoning_content", "choices[0].delta.reasoning_content") or ""
            )
    else:
        text = _text_of(choice)
    info.new_tokens = 1 if text else 0
    reason = choice.get("finish_reason")
    if reason is not None:
        info.finish_reason = _finish(reason, "choices[0].finish_reason")
    return info


def extractor_for(api_type: str) -> Extractor:
    """The extractor of ``api_type`` (``sglang``; anything else is an OpenAI route, as in build_payload)."""
    return extract_sglang if api_type == "sglang" else extract_openai


def extract_chunk(obj: Any, api_type: str) -> ChunkInfo:
    """Turn one decoded event (or non-streaming body) into a :class:`ChunkInfo`; ChunkError if malformed."""
    return extractor_for(api_type)(obj)


@dataclass(slots=True)
class ServerTimings:
    """What SGLang's final ``meta_info`` says about the request's life on the server."""

    e2e_latency_s: float | None = None
    queue_time_s: float | None = None
    num_retractions: int | None = None


def _seconds(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if value is None:
        return None
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:
        return float(value)
    raise _bad("meta_info." + key, value, "a number of seconds ≥ 0")


def server_timings(meta: dict[str, Any]) -> ServerTimings:
    """``e2e_latency``, ``queue_time`` and ``num_retractions`` of a ``meta_info`` (each optional);
    ChunkError if one is mistyped. Read once per request, from the last chunk."""
    retractions = meta.get("num_retractions")
    return ServerTimings(
        _seconds(meta, "e2e_latency"),
        _seconds(meta, "queue_time"),
        None if retractions is None else _count(retractions, "meta_info.num_retractions"),
    )
