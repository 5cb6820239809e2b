"""The HTTP client: :class:`RequestSender` (one aiohttp session) and :class:`SSEParser` (the one stream
parser for every API)."""

from __future__ import annotations

from .request_sender import RequestSender
from .sse import SSEParser

__all__ = ["RequestSender", "SSEParser"]
