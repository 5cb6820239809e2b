"""SSE parsing and per-API field extraction."""

from __future__ import annotations

import json

from sglang_test_framework.client.payloads import build_payload, extract_chunk
from sglang_test_framework.client.request_sender import _Stream
from sglang_test_framework.client.sse import SSEParser
from sglang_test_framework.records import Request


def test_events_split_across_reads_and_several_per_read() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a"') == []
    assert p.feed(b': 1}\n\ndata: {"b": 2}\n\ndata: [DO') == [b'{"a": 1}', b'{"b": 2}']
    assert not p.done
    assert p.feed(b"NE]\n\n") == [] and p.done


def test_crlf_comments_and_multiline_data() -> None:
    p = SSEParser()
    assert p.feed(b": keepalive\r\nevent: x\r\ndata: line1\r\ndata: line2\r\n\r\n") == [b"line1\nline2"]


def test_flush_returns_an_unterminated_last_event() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"x": 1}') == []
    assert p.flush() == [b'{"x": 1}']
    q = SSEParser()
    assert q.feed(b"da") == [] and q.feed(b'ta: {"y": 2}\n') == []  # the field name split across reads
    assert q.flush() == [b'{"y": 2}']
    r = SSEParser()
    assert r.feed(b"data: [DONE]") == [] and r.flush() == [] and r.done
    assert SSEParser().flush() == []


def test_a_line_spread_over_many_reads_is_joined_once() -> None:
    p = SSEParser()
    payload = b'{"text": "' + b"w" * 100_000 + b'"}'
    event = b"data: " + payload + b"\n\ndata: [DONE]\n\n"
    pieces = [event[i : i + 1000] for i in range(0, len(event), 1000)]
    out = [e for piece in pieces for e in p.feed(piece)]
    assert out == [payload] and p.done


def test_sglang_cumulative_chunk_covering_three_tokens() -> None:
    s = _Stream(cumulative=True)
    for total, t in ((1, 10), (4, 20), (5, 30)):
        s.add(extract_chunk({"text": "x", "meta_info": {"completion_tokens": total, "cached_tokens": 2}}, "sglang"), t)
    assert s.chunk_tokens == [1, 3, 1] and s.chunk_ns == [10, 20, 30] and s.total == 5 and s.cached == 2


def test_chat_role_chunk_is_not_a_token_and_usage_chunk_sets_totals() -> None:
    s = _Stream(cumulative=False)
    events = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]},
        {"choices": [{"delta": {"content": " there"}, "finish_reason": None}]},
        {"choices": [{"delta": {}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 7}}},
    ]
    for i, e in enumerate(events):
        s.add(extract_chunk(e, "openai-chat"), i)
    assert s.chunk_ns == [1, 2] and s.total == 3 and s.cached == 7 and s.finish_reason == "length"


def test_continuous_usage_gives_exact_counts_per_chunk() -> None:
    s = _Stream(cumulative=False)
    for i, total in enumerate((2, 5)):
        s.add(
            extract_chunk(
                {"choices": [{"text": "a b", "finish_reason": None}], "usage": {"completion_tokens": total}}, "openai"
            ),
            i,
        )
    assert s.chunk_tokens == [2, 3]


def test_error_event_is_recorded() -> None:
    info = extract_chunk({"error": {"message": "boom", "code": 500}}, "sglang")
    assert info.error == "boom"


def test_payloads_per_api() -> None:
    req = Request("r1", "hello world", 2, 16, messages=[{"role": "user", "content": "hello world"}])
    g = build_payload(req, "sglang", True, "m")
    assert g["text"] == "hello world" and g["sampling_params"]["max_new_tokens"] == 16 and g["rid"] == "r1"
    c = build_payload(req, "openai", True, "m", extra={"top_k": 1})
    assert c["max_tokens"] == 16 and c["stream_options"]["continuous_usage_stats"] and c["top_k"] == 1
    ch = build_payload(req, "openai-chat", False, "m")
    assert ch["messages"][0]["content"] == "hello world" and "stream_options" not in ch
    json.dumps(ch)
