"""Frames between the driver and a client worker: exact round trip, end of file and a torn frame."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from sglang_test_framework.records import ClientProcessStats, Request, RequestRecord
from sglang_test_framework.shards.runner import SenderSettings, ShardSpec
from sglang_test_framework.shards.wire import Counters, Done, Records, Start, encode, read_message


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def test_messages_round_trip_exactly_then_end_of_file() -> None:
    record = RequestRecord(request_id="r1", scheduled_ns=2**62 + 1, chunk_ns=[1, 2, 3], chunk_tokens=[1, 1, 1])
    spec = ShardSpec(
        1, [Request("r1", "p", 1, 1, arrival_offset_s=0.25)], SenderSettings("http://x/generate", api_key="k")
    )
    stats = ClientProcessStats(0, 1, "h", 0.5, 1.0, 3)
    messages: list[object] = [spec, Start(123), Records([record], Counters(1, 0, 1)), Done(stats)]

    async def read_all() -> list[object | None]:
        reader = _reader(b"".join(encode(m) for m in messages))
        return [await read_message(reader) for _ in range(len(messages) + 1)]

    out = asyncio.run(read_all())
    assert out[:-1] == messages and out[-1] is None
    assert "k" not in repr(spec.sender)  # the API key stays out of logs


def test_a_torn_frame_reads_as_end_of_file() -> None:
    frame = encode(Start(5))

    async def read_torn() -> object | None:
        return await read_message(_reader(frame[:-2]))

    assert asyncio.run(read_torn()) is None


@dataclass(frozen=True)
class _Source:
    """A picklable prompt source, as trace replay uses."""

    words: int

    def text(self) -> str:
        return "w " * self.words


def test_a_worker_receives_every_field_of_every_request() -> None:
    request = Request(
        request_id="s3-t1",
        prompt="next user part",
        prompt_len=12,
        output_len=6,
        arrival_offset_s=0.5,
        messages=[{"role": "user", "content": "hi"}],
        prompt_token_ids=[1, 2, 3],
        group_id=3,
        turn=1,
        chain_id=3,
        think_time_s=0.05,
        routing_key="session-3",
        workload="chat",
        extends_previous=True,
        collect_output=True,
        prompt_source=_Source(4),
        user_windows=((0.0, 1.5), (3.0, float("inf"))),
    )
    default = Request("r", "", 0, 0)
    # every field holds a non-default value, so a field added later is covered here too
    unset = [f.name for f in dataclasses.fields(Request) if getattr(request, f.name) == getattr(default, f.name)]
    assert unset == []
    spec = ShardSpec(0, [request], SenderSettings("http://x/generate"))

    async def read_back() -> object | None:
        return await read_message(_reader(encode(spec)))

    received = asyncio.run(read_back())
    assert isinstance(received, ShardSpec)
    assert received.requests == [request] and received.requests[0].prompt_text() == "w w w w "
