"""AnswerCollector: the answer of a response for closed-loop sessions, from every API's event forms."""

from __future__ import annotations

from typing import Any

import pytest

from sglang_test_framework.client.answers import AnswerCollector, collecting
from sglang_test_framework.client.payloads import ChunkError, extractor_for
from sglang_test_framework.records import RequestRecord


def collect(api_type: str, events: list[Any]) -> RequestRecord:
    answer = AnswerCollector()
    extract = collecting(extractor_for(api_type), api_type, answer)
    for event in events:
        extract(event)
    record = RequestRecord("r")
    answer.store(record)
    return record


def gen(text: str, ids: list[int], total: int) -> dict[str, Any]:
    return {"text": text, "output_ids": ids, "meta_info": {"completion_tokens": total}}


def test_generate_cumulative_and_incremental_streams_give_the_same_answer() -> None:
    cumulative = collect("sglang", [gen("a", [1], 1), gen("a b c", [1, 2, 3], 3), gen("a b c d", [1, 2, 3, 4], 4)])
    incremental = collect("sglang", [gen("a", [1], 1), gen(" b c", [2, 3], 3), gen(" d", [4], 4)])
    assert (cumulative.output_text, cumulative.output_ids) == ("a b c d", [1, 2, 3, 4])
    assert (incremental.output_text, incremental.output_ids) == ("a b c d", [1, 2, 3, 4])


def test_openai_deltas_and_bodies() -> None:
    chunks: list[Any] = [{"choices": [{"text": t, "index": 0}]} for t in ("x", " y", " z")]
    chunks.append({"choices": [], "usage": None})
    assert collect("openai", chunks).output_text == "x y z"
    chat = [{"choices": [{"delta": {"role": "assistant", "content": ""}}]}]
    chat += [{"choices": [{"delta": {"content": t}}]} for t in ("hi", " there")]
    record = collect("openai-chat", chat)
    assert (record.output_text, record.output_ids) == ("hi there", None)
    body = {"choices": [{"message": {"role": "assistant", "content": "whole answer"}, "finish_reason": "length"}]}
    assert collect("openai-chat", [body]).output_text == "whole answer"


def test_mistyped_answer_fields_name_the_field() -> None:
    with pytest.raises(ChunkError, match="output_ids"):
        collect("sglang", [{"text": "a", "output_ids": ["1"], "meta_info": {"completion_tokens": 1}}])
    with pytest.raises(ChunkError, match=r"choices\[0\]\.text"):
        collect("openai", [{"choices": [{"text": 5}]}])
