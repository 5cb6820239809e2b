"""The one home of what every HTTP caller shares: the generation API paths and the auth header.

It sits beside ``records`` and ``errors`` at the bottom of the package, so the client, the server
manager, the router launcher, the scrapers and the routing proxy all use it without importing each other.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["API_PATHS", "api_url", "auth_headers"]

API_PATHS = MappingProxyType(
    {"sglang": "/generate", "openai": "/v1/completions", "openai-chat": "/v1/chat/completions"}
)
"""Endpoint path of each ``api_type`` (SGLang native, OpenAI completions, OpenAI chat)."""


def api_url(base_url: str, api_type: str) -> str:
    """Full endpoint URL of an API type on a server or router (``ValueError`` for an unknown type)."""
    try:
        path = API_PATHS[api_type]
    except KeyError:
        raise ValueError(f"api_type {api_type!r}: use one of {', '.join(API_PATHS)}") from None
    return base_url.rstrip("/") + path


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Bearer <key>`` when a key is set (SGLang's and the routers' scheme), else nothing."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
