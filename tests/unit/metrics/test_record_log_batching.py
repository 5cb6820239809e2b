"""requests.jsonl written in batches inside an event loop: a record reaches the file within
FLUSH_INTERVAL_S without further appends, at once at FLUSH_BYTES, before any read and at close; outside
a loop at once; a failed batch write keeps the file whole and the records waiting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sglang_test_framework.metrics.record_log import FLUSH_BYTES, FLUSH_INTERVAL_S, RecordLog
from sglang_test_framework.records import RequestRecord

T0 = 9_000_000_000_000


def rec(i: int, pad: int = 0) -> RequestRecord:
    return RequestRecord(
        f"r{i}", prompt_len=10, send_ns=T0 + i, finish_ns=T0 + i + 5, output_tokens=1, error="x" * pad or None
    )


def lines(path: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


async def test_a_batch_reaches_the_file_within_the_interval(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "r.jsonl")
    for i in range(3):
        log.append(rec(i))
    assert lines(log.path) == []  # waiting: one write for the batch
    await asyncio.sleep(FLUSH_INTERVAL_S * 3)
    assert lines(log.path) == ["r0", "r1", "r2"]  # written by the timer, no append or close needed
    log.append(rec(3))
    assert [r.request_id for r in log] == ["r0", "r1", "r2", "r3"] and log[-1].request_id == "r3"  # reads flush
    log.append(rec(4))
    log.close()
    assert lines(log.path) == ["r0", "r1", "r2", "r3", "r4"] and len(log) == 5


async def test_a_full_batch_is_written_at_once(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "r.jsonl")
    big = FLUSH_BYTES // 4
    for i in range(4):
        log.append(rec(i, pad=big))
    assert lines(log.path) == ["r0", "r1", "r2", "r3"]  # the fourth reached FLUSH_BYTES
    log.close()


def test_outside_a_loop_every_record_is_written_at_once(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "r.jsonl")
    log.append(rec(0))
    assert lines(log.path) == ["r0"]
    log.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
async def test_a_failed_batch_write_keeps_the_records_waiting() -> None:
    log = RecordLog(Path("/dev/full"))  # every write fails with ENOSPC
    log.append(rec(0))  # batched: no write yet
    with pytest.raises(OSError):
        log.append(rec(1, pad=FLUSH_BYTES))  # its own write fails: not added
    assert len(log) == 1
    with pytest.raises(OSError):
        log.flush()  # r0 still waits and still cannot be written
    assert len(log) == 1
