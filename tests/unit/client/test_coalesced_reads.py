"""The sender counts token chunks that arrived in one socket read with others (they share a timestamp)."""

from __future__ import annotations

import json
from typing import cast

import aiohttp

from sglang_test_framework.client.payloads import extractor_for
from sglang_test_framework.client.request_sender import _complete, _read_stream, _Stream
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.records import RequestRecord


def event(total: int) -> bytes:
    return b"data: " + json.dumps({"text": "x", "meta_info": {"completion_tokens": total}}).encode() + b"\n\n"


class Reads:
    """A response body delivered in the given socket reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = list(reads)

    async def readany(self) -> bytes:
        return self._reads.pop(0) if self._reads else b""


async def read(reads: list[bytes]) -> RequestRecord:
    record = RequestRecord("r", send_ns=1)
    state = _Stream(cumulative=True)
    await _read_stream(cast(aiohttp.StreamReader, Reads(reads)), state, record, extractor_for("sglang"))
    return _complete(record, state)


async def test_events_in_one_read_are_counted_as_coalesced() -> None:
    # read 1: token 1 alone; read 2: tokens 2, 3 and 4 in three events; read 3: token 5 and [DONE]
    record = await read([event(1), event(2) + event(3) + event(4), event(5) + b"data: [DONE]\n\n"])
    assert record.success and record.chunk_tokens == [1, 1, 1, 1, 1]
    assert record.coalesced_chunks == 3
    assert len(set(record.chunk_ns[1:4])) == 1  # one timestamp for the read: ITL gaps of exactly 0
    assert sum(gap == 0.0 for gap in d.itl_ms(record)) == 2
    assert d.coalesced_chunk_share([record]) == 3 / 5


async def test_one_event_per_read_and_a_last_unterminated_read() -> None:
    separate = await read([event(1), event(2), event(3), b"data: [DONE]\n\n"])
    assert separate.coalesced_chunks == 0 and d.coalesced_chunk_share([separate]) == 0.0
    # the stream ends without [DONE]: the unterminated last event is read at the end of the stream, alone
    torn = await read([event(1), event(2) + event(3)[:-2]])
    assert not torn.success and torn.chunk_tokens == [1, 1, 1] and torn.coalesced_chunks == 0
