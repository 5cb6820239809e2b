"""Keeping a response's answer (text, and output token ids of ``/generate``) for closed-loop sessions.

Only requests with ``Request.collect_output`` pay for this: :func:`collecting` wraps the API's extractor
so that each decoded event also feeds an :class:`AnswerCollector`; the hot path of every other request
is untouched. Fields are type-checked like the extractors' (a :class:`~.payloads.ChunkError` names the
field).

- ``/generate``: ``text`` and ``output_ids`` are cumulative by default (each event holds the whole
  output so far) and deltas with ``--incremental-streaming-output``; an event whose ``output_ids`` are
  as many as its ``meta_info.completion_tokens`` replaces the answer, any other extends it.
- ``/v1/completions``: ``choices[0].text`` deltas (the whole text without streaming).
- ``/v1/chat/completions``: ``choices[0].delta.content`` deltas (``message.content`` without streaming).
"""

from __future__ import annotations

from typing import Any

from ..records import RequestRecord
from .payloads import ChunkError, ChunkInfo, Extractor

__all__ = ["AnswerCollector", "collecting"]


def _str_or_none(value: Any, field: str) -> str | None:
    if value is None or type(value) is str:
        return value
    raise ChunkError(f"{field} is {type(value).__name__}, expected a string or null")


def _ids(value: Any) -> list[int] | None:
    if value is None:
        return None
    if type(value) is list and all(type(x) is int for x in value):
        return value
    raise ChunkError("output_ids is not a list of ints")


class AnswerCollector:
    """The answer of one response, built from its decoded events (module docstring)."""

    __slots__ = ("_parts", "ids")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.ids: list[int] | None = None

    @property
    def text(self) -> str:
        """The answer text so far."""
        return "".join(self._parts)

    def store(self, record: RequestRecord) -> None:
        """Put the answer on ``record`` (``output_text``; ``output_ids`` when the API sent them)."""
        record.output_text = self.text
        record.output_ids = self.ids

    def add_generate(self, obj: dict[str, Any], info: ChunkInfo) -> None:
        """One ``/generate`` event (already validated by the extractor)."""
        text = _str_or_none(obj.get("text"), "text") or ""
        ids = _ids(obj.get("output_ids"))
        cumulative = ids is not None and info.total_tokens is not None and len(ids) == info.total_tokens
        if ids is None:  # no ids: text is cumulative unless it does not extend what we have
            cumulative = text.startswith(self.text)
        if cumulative:
            self._parts = [text]
            self.ids = list(ids) if ids is not None else self.ids
            return
        if text:
            self._parts.append(text)
        if ids is not None:
            self.ids = [*(self.ids or []), *ids]

    def add_openai(self, obj: dict[str, Any]) -> None:
        """One ``/v1/completions`` or ``/v1/chat/completions`` event (or non-streaming body)."""
        choices = obj.get("choices")
        if type(choices) is not list or not choices or type(choices[0]) is not dict:
            return
        choice = choices[0]
        delta, message = choice.get("delta"), choice.get("message")
        if type(delta) is dict:
            text = _str_or_none(delta.get("content"), "choices[0].delta.content")
        elif type(message) is dict:
            text = _str_or_none(message.get("content"), "choices[0].message.content")
        else:
            text = _str_or_none(choice.get("text"), "choices[0].text")
        if text:
            self._parts.append(text)


def collecting(extract: Extractor, api_type: str, answer: AnswerCollector) -> Extractor:
    """``extract``, also feeding every event of an ``api_type`` response into ``answer``."""

    def wrapped(obj: Any) -> ChunkInfo:
        info = extract(obj)
        if info.error is None and type(obj) is dict:
            if api_type == "sglang":
                answer.add_generate(obj, info)
            else:
                answer.add_openai(obj)
        return info

    return wrapped
