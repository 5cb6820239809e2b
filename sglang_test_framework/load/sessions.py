"""Closed-loop sessions: the next turn of a conversation carries the answer the server really gave.

A session turn (``Request.extends_previous``) is generated with only its new user part. When it becomes
due, :func:`continue_turn` prefixes the previous turn *as it was sent* and the answer of that turn's
record, so the new prompt extends exactly what the server's prefix cache holds:

- chat (``messages``): previous messages + ``{"role": "assistant", "content": answer}`` + the new
  user message(s);
- text (``/generate`` text, ``/v1/completions``): previous prompt + answer text + new user text,
  joined by single spaces;
- token ids (``/generate`` with ``input_ids``): previous ids + the answer's ``output_ids`` + new ids.

``prompt_len`` becomes previous ``prompt_len`` + answer tokens + new ``prompt_len`` (exact for token ids
and for the built-in word tokenizer the simulator shares; chat templates add their own tokens on a real
server). A failed or cancelled previous turn contributes the part of the answer that arrived (possibly
nothing): the session goes on (docs/workloads.md, "Closed-loop sessions").
"""

from __future__ import annotations

import dataclasses

from ..records import ChatMessage, Request, RequestRecord

__all__ = ["answer_of", "continue_turn"]


def answer_of(record: RequestRecord) -> tuple[str, list[int] | None, int]:
    """``(text, output ids or None, tokens)`` of a record's answer; empty when nothing was kept."""
    text = record.output_text or ""
    ids = record.output_ids
    if ids is not None:
        return text, list(ids), len(ids)
    return text, None, record.output_tokens if text else 0


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def continue_turn(previous: Request, previous_record: RequestRecord, turn: Request) -> Request:
    """The request to send for session turn ``turn``: ``previous`` (as sent) + its answer + ``turn``.

    ``turn`` itself is returned unchanged when it does not extend its predecessor.
    """
    if not turn.extends_previous:
        return turn
    text, answer_ids, answer_tokens = answer_of(previous_record)
    messages: list[ChatMessage] = []
    if previous.messages or turn.messages:
        messages = [*previous.messages, {"role": "assistant", "content": text}, *turn.messages]
    ids: list[int] | None = None
    if previous.prompt_token_ids is not None and turn.prompt_token_ids is not None:
        answer = answer_ids if answer_ids is not None else []
        ids = [*previous.prompt_token_ids, *answer, *turn.prompt_token_ids]
        answer_tokens = len(answer)
    return dataclasses.replace(
        turn,
        prompt=_join(previous.prompt, text, turn.prompt),
        prompt_len=previous.prompt_len + answer_tokens + turn.prompt_len,
        messages=messages,
        prompt_token_ids=ids,
        extends_previous=False,
    )
