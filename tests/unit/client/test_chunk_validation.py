"""The per-API extractors check the type of every field they read and name the field when it is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from sglang_test_framework.client.payloads import ChunkError, extract_chunk, server_timings
from sglang_test_framework.client.request_sender import RequestSender


def sglang_event(**meta: Any) -> dict[str, Any]:
    return {"text": "a b", "meta_info": {"completion_tokens": 2, "prompt_tokens": 3, **meta}}


def chat_event(delta: Any = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": "hi"} if delta is None else delta, "finish_reason": None}
    return {"choices": [choice], **extra}


def test_the_message_names_the_field_the_value_and_what_was_expected() -> None:
    with pytest.raises(ChunkError) as info:
        extract_chunk(sglang_event(completion_tokens="abc"), "sglang")
    assert str(info.value) == "meta_info.completion_tokens is 'abc' (str), expected an int ≥ 0"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"text": "a", "meta_info": [1]}, "meta_info is [1] (list)"),
        ({"text": "a", "meta_info": "m"}, "meta_info is 'm' (str)"),
        ({"text": "a", "meta_info": None}, "meta_info is null"),
        ({"text": "a"}, "meta_info is missing"),
        ({"text": "a", "meta_info": {}}, "meta_info.completion_tokens is missing"),
        (sglang_event(completion_tokens=2.0), "meta_info.completion_tokens is 2.0 (float)"),
        (sglang_event(completion_tokens=-1), "meta_info.completion_tokens is -1 (int)"),
        (sglang_event(completion_tokens=True), "meta_info.completion_tokens is True (bool)"),
        (sglang_event(completion_tokens=2**80), "meta_info.completion_tokens is"),
        (sglang_event(cached_tokens="7"), "meta_info.cached_tokens is '7' (str)"),
        (sglang_event(cached_tokens=False), "meta_info.cached_tokens is False (bool)"),
        (sglang_event(prompt_tokens=-3), "meta_info.prompt_tokens is -3 (int)"),
        (sglang_event(finish_reason=5), "meta_info.finish_reason is 5 (int)"),
        (sglang_event(finish_reason={"length": 2}), "meta_info.finish_reason.type is missing"),
        ({"text": 5, "meta_info": {"completion_tokens": 1}}, "text is 5 (int)"),
        ([1, 2], "event is [1, 2] (list)"),
    ],
)
def test_sglang_fields_of_the_wrong_type(event: Any, field: str) -> None:
    with pytest.raises(ChunkError) as info:
        extract_chunk(event, "sglang")
    assert str(info.value).startswith(field)


def test_a_huge_or_deep_value_is_shown_short() -> None:
    deep: list[Any] = []
    for _ in range(500):
        deep = [deep]
    for value in ("x" * 100_000, deep, {str(i): i for i in range(10_000)}):
        with pytest.raises(ChunkError) as info:
            extract_chunk(sglang_event(completion_tokens=value), "sglang")
        assert str(info.value).startswith("meta_info.completion_tokens is ") and len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"choices": {"0": {}}}, "choices is"),
        ({"choices": "abc"}, "choices is 'abc' (str)"),
        ({"choices": ["x"]}, "choices[0] is 'x' (str)"),
        (chat_event(delta="hi"), "choices[0].delta is 'hi' (str)"),
        (chat_event(delta=[]), "choices[0].delta is [] (list)"),
        (chat_event(delta={"content": 5}), "choices[0].delta.content is 5 (int)"),
        (chat_event(delta={"reasoning_content": ["r"]}), "choices[0].delta.reasoning_content is"),
        ({"choices": [{"message": "hi"}]}, "choices[0].message is 'hi' (str)"),
        ({"choices": [{"message": {"content": 1}}]}, "choices[0].message.content is 1 (int)"),
        ({"choices": [{"text": 5}]}, "choices[0].text is 5 (int)"),
        ({"choices": [{"text": "a", "finish_reason": 3}]}, "choices[0].finish_reason is 3 (int)"),
        ({"choices": [], "usage": "lots"}, "usage is 'lots' (str)"),
        ({"choices": [], "usage": [3]}, "usage is [3] (list)"),
        ({"choices": [], "usage": {"completion_tokens": "3"}}, "usage.completion_tokens is '3' (str)"),
        ({"choices": [], "usage": {"completion_tokens": 1.5}}, "usage.completion_tokens is 1.5 (float)"),
        ({"choices": [], "usage": {"prompt_tokens": True}}, "usage.prompt_tokens is True (bool)"),
        ({"choices": [], "usage": {"prompt_tokens_details": 7}}, "usage.prompt_tokens_details is 7 (int)"),
        (
            {"choices": [], "usage": {"prompt_tokens_details": {"cached_tokens": "7"}}},
            "usage.prompt_tokens_details.cached_tokens is '7' (str)",
        ),
        (None, "event is null"),
    ],
)
@pytest.mark.parametrize("api_type", ["openai", "openai-chat"])
def test_openai_fields_of_the_wrong_type(event: Any, field: str, api_type: str) -> None:
    with pytest.raises(ChunkError) as info:
        extract_chunk(event, api_type)
    assert str(info.value).startswith(field)


def test_well_typed_events_pass_and_optional_fields_may_be_null() -> None:
    info = extract_chunk(sglang_event(cached_tokens=None, finish_reason={"type": "length", "length": 2}), "sglang")
    assert info.total_tokens == 2 and info.cached_tokens is None and info.finish_reason == "length"
    assert extract_chunk(sglang_event(cached_tokens=5, finish_reason="stop"), "sglang").cached_tokens == 5
    usage = {"completion_tokens": 4, "prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}}
    chat = extract_chunk(chat_event(delta={"role": "assistant", "content": None}, usage=usage), "openai-chat")
    assert chat.new_tokens == 0 and chat.total_tokens == 4 and chat.cached_tokens == 2
    reasoning = extract_chunk(chat_event(delta={"content": None, "reasoning_content": "think"}), "openai-chat")
    assert reasoning.new_tokens == 1
    bare = extract_chunk({"choices": None, "usage": None}, "openai")
    assert bare.total_tokens is None and bare.new_tokens == 0
    body = {"choices": [{"message": {"role": "assistant", "content": "x y"}, "finish_reason": "length"}]}
    assert extract_chunk(body, "openai-chat").finish_reason == "length"


def test_error_events_carry_the_server_message() -> None:
    assert extract_chunk({"error": {"message": "boom", "code": 500}}, "sglang").error == "boom"
    assert extract_chunk({"error": "overloaded"}, "openai").error == "overloaded"
    assert extract_chunk({"error": {"message": ["deep"]}}, "openai-chat").error == "['deep']"


def test_server_timings_are_typed() -> None:
    timings = server_timings({"e2e_latency": 1.5, "queue_time": 0, "num_retractions": 2})
    assert (timings.e2e_latency_s, timings.queue_time_s, timings.num_retractions) == (1.5, 0.0, 2)
    assert server_timings({}).e2e_latency_s is None
    for meta, field in (
        ({"e2e_latency": "1"}, "meta_info.e2e_latency"),
        ({"queue_time": True}, "meta_info.queue_time"),
        ({"e2e_latency": float("nan")}, "meta_info.e2e_latency"),
        ({"num_retractions": 1.0}, "meta_info.num_retractions"),
    ):
        with pytest.raises(ChunkError, match=field):
            server_timings(meta)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0, True])
@pytest.mark.parametrize("name", ["timeout_s", "idle_timeout_s"])
def test_timeouts_must_be_finite_and_positive(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number of seconds > 0"):
        RequestSender(timeout_s=value) if name == "timeout_s" else RequestSender(idle_timeout_s=value)


def test_timeouts_are_kept() -> None:
    sender = RequestSender(timeout_s=5, idle_timeout_s=0.5)
    assert (sender.timeout_s, sender.idle_timeout_s) == (5.0, 0.5)
