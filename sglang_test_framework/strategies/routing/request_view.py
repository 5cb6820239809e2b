"""Turn an incoming request body into a :class:`RoutingRequest` (the body is parsed once, here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import RoutingRequest

__all__ = ["build_routing_request", "routing_text"]


def _join(value: Any) -> str:
    """A string as is; a list of strings / token ids (possibly nested) joined by single spaces."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(part for part in (_join(item) for item in value) if part)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _message_content(message: Any) -> str:
    """A chat message's text: a string content, or the ``text`` parts of a multimodal content list."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text") for p in content if isinstance(p, dict))
        return " ".join(p for p in parts if isinstance(p, str) and p)
    return ""


def routing_text(path: str, body: Mapping[str, Any]) -> str:
    """The text prefix-aware policies match on, chosen as sglang-router chooses it.

    Args:
        path: Request path; ``…/chat/completions``, ``…/completions`` or anything else (``/generate``).
        body: Parsed JSON body.

    Returns:
        Chat: the messages' contents joined by single spaces. Completions: the ``prompt`` (a list of
        prompts or token ids joined by spaces). ``/generate``: ``text``, else ``input_ids`` joined by
        spaces. Empty when the body has none of these.
    """
    if path.endswith("/chat/completions"):
        messages = body.get("messages")
        if not isinstance(messages, list):
            return ""
        return " ".join(text for text in (_message_content(m) for m in messages) if text)
    if path.endswith("/completions"):
        return _join(body.get("prompt"))
    text = body.get("text")
    if text is not None:
        return _join(text)
    return _join(body.get("input_ids"))


def build_routing_request(path: str, raw_body: bytes, headers: Mapping[str, str]) -> RoutingRequest:
    """Parse ``raw_body`` (JSON object) into the routing view of a request.

    Args:
        path: Request path.
        raw_body: The request body as received.
        headers: Incoming headers (``X-Request-Id`` names the request when present).

    Raises:
        ValueError: The body is not a JSON object (the proxy answers 400).
    """
    try:
        body = json.loads(raw_body)
    except ValueError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"request body must be a JSON object, got {type(body).__name__}")
    request_id = headers.get("X-Request-Id")
    if request_id is None:
        rid = body.get("rid")
        request_id = rid if isinstance(rid, str) else None
    return RoutingRequest(path, routing_text(path, body), request_id, body, headers)
