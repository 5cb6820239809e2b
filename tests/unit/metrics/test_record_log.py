"""requests.jsonl: one flushed line per record, read back lazily as a sequence; a partial (interrupted)
run's file is summarised again, a torn last line skipped."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.record_log import CHECKPOINT_EVERY, RecordLog
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 6_000_000_000_000


def rec(i: int) -> RequestRecord:
    send = T0 + i * MS
    return RequestRecord(
        f"r{i}",
        prompt_len=10 + i % 7,
        arrival_ns=send,
        send_ns=send,
        first_token_ns=send + 5 * MS,
        finish_ns=send + 9 * MS,
        chunk_ns=[send + 5 * MS, send + 7 * MS],
        chunk_tokens=[1, 2],
        output_tokens=3,
        success=i % 10 != 3,
        error_type=None if i % 10 != 3 else "http",
    )


def test_records_read_back_as_a_sequence(tmp_path: Path) -> None:
    records = [rec(i) for i in range(2 * CHECKPOINT_EVERY + 5)]
    log = RecordLog(tmp_path / "requests.jsonl")
    for r in records:
        log.append(r)
    assert len(log) == len(records) and list(log) == records and log == records
    assert (
        log[0] == records[0] and log[-1] == records[-1] and log[CHECKPOINT_EVERY + 1] == records[CHECKPOINT_EVERY + 1]
    )
    assert log[CHECKPOINT_EVERY - 2 : CHECKPOINT_EVERY + 3] == records[CHECKPOINT_EVERY - 2 : CHECKPOINT_EVERY + 3]
    assert log[::500] == records[::500]
    with pytest.raises(IndexError, match="out of range"):
        log[len(records)]
    log.close()
    assert log[5] == records[5]  # reading never needs the writer


def test_every_value_is_written_even_of_unexpected_types(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "requests.jsonl")
    odd = rec(1)
    odd.cached_tokens = "12"  # type: ignore[assignment]  # what the sender used to let through
    odd.worker_id = Path("w")  # type: ignore[assignment]  # not JSON: written as its text
    log.append(odd)
    line = json.loads((tmp_path / "requests.jsonl").read_text())
    assert line["cached_tokens"] == "12" and line["worker_id"] == "w"


def test_a_private_file_is_removed_with_its_collector() -> None:
    collector = MetricsCollector()
    collector.add_record(rec(1))
    path = collector.records.path
    assert path.exists()
    del collector
    gc.collect()
    assert not path.exists()


def test_an_interrupted_runs_file_is_summarised_again(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    live = MetricsCollector(path)
    for i in range(40):
        live.add_record(rec(i))
    live.close()
    with path.open("a") as fh:
        fh.write('{"request_id": "torn", "send_')  # the process died while writing this line
    again = MetricsCollector.from_records_file(path)
    assert again.skipped_lines == 1 and len(again.records) == 40
    assert again.get_metrics() == live.get_metrics()
    assert again.to_dataframe().equals(live.to_dataframe())
    again.add_record(rec(40))  # appended after the torn line, on a line of its own
    again.close()
    third = MetricsCollector.from_records_file(path)
    assert third.skipped_lines == 1 and [r.request_id for r in third.records][-2:] == ["r39", "r40"]
    assert third.get_metrics()["total_requests"] == 41


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_failed_write_raises_and_adds_nothing() -> None:
    collector = MetricsCollector(Path("/dev/full"))  # every write fails with ENOSPC
    with pytest.raises(OSError):
        collector.add_record(rec(1))
    assert len(collector.records) == 0 and collector.get_metrics()["total_requests"] == 0
