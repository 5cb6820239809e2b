"""Per-API request bodies and field extractors (the only API-specific code of the client)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..records import Request

__all__ = ["ChunkInfo", "build_payload", "extract_chunk"]


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
            body["text"] = request.prompt
    else:
        body = {"model": model, "temperature": 0.0, "stream": stream, "ignore_eos": ignore_eos}
        if stream:
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        if api_type == "openai":
            body["prompt"] = request.prompt
            body["max_tokens"] = request.output_len
        else:
            body["messages"] = request.messages or [{"role": "user", "content": request.prompt}]
            body["max_completion_tokens"] = request.output_len
    if extra:
        body.update(extra)
    return body


@dataclass(slots=True)
class ChunkInfo:
    """What one decoded event says. ``total_tokens`` is a running total when the API reports one
    (sglang ``completion_tokens``, OpenAI usage), else None and ``new_tokens`` counts this chunk."""

    total_tokens: int | None = None
    new_tokens: int = 0
    text: str | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None


def _finish(reason: Any) -> str | None:
    if reason is None:
        return None
    if isinstance(reason, dict):
        return str(reason.get("type", reason))
    return str(reason)


def _sglang(obj: dict[str, Any]) -> ChunkInfo:
    meta = obj.get("meta_info") or {}
    return ChunkInfo(
        total_tokens=meta.get("completion_tokens"),
        text=obj.get("text"),
        cached_tokens=meta.get("cached_tokens"),
        finish_reason=_finish(meta.get("finish_reason")),
        meta=meta,
    )


def _openai(obj: dict[str, Any]) -> ChunkInfo:
    info = ChunkInfo()
    usage = obj.get("usage")
    if usage:
        info.total_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details") or {}
        info.cached_tokens = details.get("cached_tokens")
    choices = obj.get("choices") or []
    if choices:
        choice = choices[0]
        delta = choice.get("delta")
        text = (
            (delta.get("content") or "") + (delta.get("reasoning_content") or "")
            if delta is not None
            else choice.get("text") or ""
        )
        if delta is None and "message" in choice:
            text = (choice["message"] or {}).get("content") or ""
        info.text = text
        info.new_tokens = 1 if text else 0
        info.finish_reason = _finish(choice.get("finish_reason"))
    return info


def extract_chunk(obj: Any, api_type: str) -> ChunkInfo:
    """Turn one decoded event (or non-streaming body) into a :class:`ChunkInfo`."""
    if not isinstance(obj, dict):
        return ChunkInfo(error=f"unexpected event: {str(obj)[:200]}")
    if obj.get("error"):
        err = obj["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        return ChunkInfo(error=str(msg)[:500])
    return _sglang(obj) if api_type == "sglang" else _openai(obj)
