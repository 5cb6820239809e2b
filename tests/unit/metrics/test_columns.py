"""Compact columns: bad values count as missing (never an exception), no record object is kept, the
token-gap rule, memory per request and per token, and views that survive later appends."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.columns import GAP_SENTINEL, ColumnStore
from sglang_test_framework.metrics.fields import token_gaps_ns
from sglang_test_framework.metrics.record_log import RecordLog
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 4_000_000_000_000


def good(rid: str = "g", tokens: int = 4) -> RequestRecord:
    chunks = [T0 + (20 + 10 * i) * MS for i in range(tokens)]
    return RequestRecord(
        rid,
        prompt_len=100,
        scheduled_ns=T0 - 5 * MS,
        arrival_ns=T0 - 4 * MS,
        send_ns=T0,
        first_token_ns=chunks[0],
        finish_ns=chunks[-1] + MS,
        chunk_ns=chunks,
        chunk_tokens=[1] * tokens,
        output_tokens=tokens,
        cached_tokens=40,
        success=True,
    )


def with_fields(record: RequestRecord, **fields: object) -> RequestRecord:
    out = copy.copy(record)
    for name, value in fields.items():
        setattr(out, name, value)
    return out


def summary_of(*records: RequestRecord) -> dict[str, object]:
    collector = MetricsCollector()
    for record in records:
        collector.add_record(record)
    return collector.get_metrics()


def test_a_string_cached_tokens_no_longer_crashes_the_summary(tmp_path: Path) -> None:
    collector = MetricsCollector(tmp_path / "requests.jsonl")
    collector.add_record(with_fields(good(), cached_tokens="12"))
    summary = collector.get_metrics()
    assert summary["completed"] == 1 and summary["cache_hit_rate"] is None
    assert collector.to_dataframe()["cached_tokens"].isna().all()
    assert collector.records[0].to_dict()["cached_tokens"] == "12"  # requests.jsonl keeps what was measured


@pytest.mark.parametrize(
    ("bad", "missing"),
    [
        ({"cached_tokens": "12"}, {"cached_tokens": None}),
        ({"cached_tokens": -3}, {"cached_tokens": None}),
        ({"cached_tokens": 4.0}, {"cached_tokens": None}),
        ({"output_tokens": "4"}, {"output_tokens": -1}),
        ({"output_tokens": True}, {"output_tokens": -1}),
        ({"prompt_len": None}, {"prompt_len": -1}),
        ({"send_ns": "x"}, {"send_ns": 0}),
        ({"send_ns": float(T0)}, {"send_ns": 0}),
        ({"finish_ns": -7}, {"finish_ns": None}),
        ({"finish_ns": 2**70}, {"finish_ns": None}),
        ({"arrival_ns": [1, 2]}, {"arrival_ns": 0}),
        ({"first_token_ns": "now"}, {"first_token_ns": None, "chunk_ns": [], "chunk_tokens": []}),
        ({"chunk_ns": "abc"}, {"chunk_ns": [], "chunk_tokens": []}),
        ({"chunk_tokens": [1, "1", 1, 1]}, {"chunk_ns": [], "chunk_tokens": []}),
        ({"chunk_tokens": [1, 1, -1, 1]}, {"chunk_ns": [], "chunk_tokens": []}),
        ({"chunk_ns": [T0 + 20 * MS, T0 + 40 * MS, T0 + 30 * MS, T0 + 50 * MS]}, {"chunk_ns": [], "chunk_tokens": []}),
        ({"chunk_tokens": [1, 2**30, 2**30, 1]}, {"chunk_ns": [], "chunk_tokens": []}),
        ({"success": "yes"}, {"success": False}),
        ({"success": 1}, {"success": False}),
    ],
)
def test_a_bad_value_counts_as_missing(bad: dict[str, object], missing: dict[str, object]) -> None:
    other = good("other", tokens=6)
    assert summary_of(with_fields(good(), **bad), other) == summary_of(with_fields(good(), **missing), other)


def test_bad_values_never_reach_the_table() -> None:
    collector = MetricsCollector()
    collector.add_record(with_fields(good(), send_ns="x", output_tokens="4", http_status="200", worker_id=7))
    row = collector.to_dataframe().iloc[0]
    assert np.isnan(row["send_s"]) and np.isnan(row["server_latency_ms"]) and np.isnan(row["output_tokens"])
    assert row["http_status"] is None and row["worker_id"] == "7"


def test_errors_by_type_counts_odd_error_types_by_their_text() -> None:
    failed = [with_fields(good(f"f{i}"), success=False, error="e", error_type=t) for i, t in enumerate(["", 503, None])]
    assert summary_of(*failed)["errors_by_type"] == {"unknown": 2, "503": 1}


def test_the_collector_keeps_no_record_and_no_chunk_list(tmp_path: Path) -> None:
    collector = MetricsCollector(tmp_path / "requests.jsonl")
    for i in range(50):
        record = good(f"r{i}", tokens=8)
        refs = sys.getrefcount(record), sys.getrefcount(record.chunk_ns), sys.getrefcount(record.chunk_tokens)
        collector.add_record(record)
        assert (sys.getrefcount(record), sys.getrefcount(record.chunk_ns), sys.getrefcount(record.chunk_tokens)) == refs
    assert isinstance(collector.records, RecordLog) and len(collector.records) == 50  # read back from the file
    # 71 bytes per request; 4 per token after the first chunk (7 of each request's 8)
    assert collector.memory_bytes == 50 * 71 + 50 * 7 * 4


def test_memory_per_token_and_the_overflow_side_table() -> None:
    store = ColumnStore()
    long_gap = GAP_SENTINEL + 123
    store.append(with_fields(good(), chunk_ns=[T0 + 20 * MS, T0 + 20 * MS + long_gap], chunk_tokens=[1, 1]))
    assert store.nbytes == 71 + 4 + 24
    gaps = store.view().gaps
    assert gaps.values.tolist() == [GAP_SENTINEL] and gaps.exact(0, 1).tolist() == [long_gap]


def test_token_gaps_spread_a_chunk_over_its_tokens() -> None:
    first, gaps = token_gaps_ns(100, [100, 110, 110, 140], [2, 1, 0, 3])
    assert first == 2 and gaps == [10, 10, 10, 10]
    first, gaps = token_gaps_ns(100, [100, 110], [1, 3])
    assert gaps == [3, 3, 4] and sum(gaps) == 10  # integer ns: within 1 ns of 10/3 each, summing to the gap
    assert token_gaps_ns(100, [90, 110], [1, 1]) == (0, [])  # first chunk is not first_token_ns
    assert token_gaps_ns(100, [], []) == (0, [])


def test_a_view_survives_later_records() -> None:
    collector = MetricsCollector()
    collector.add_record(good("a"))
    before = collector.columns()
    for i in range(100):
        collector.add_record(good(f"b{i}"))  # the live view forces one copy, never an error
    assert len(before) == 1 and int(before.send_ns[0]) == T0
    assert len(collector.columns()) == 101 and collector.get_metrics()["completed"] == 101


def test_a_summary_mid_run_and_of_an_empty_run() -> None:
    collector = MetricsCollector()
    assert collector.get_metrics()["total_requests"] == 0
    collector.add_record(good("done"))
    cancelled = RequestRecord("waiting", arrival_ns=T0, scheduled_ns=T0, error_type="cancelled", error="cancelled")
    collector.add_record(cancelled)
    summary = collector.get_metrics()
    assert summary["completed"] == 1 and summary["errors_by_type"] == {"cancelled": 1}
    assert summary["max_in_flight"] == 1 and summary["duration_s"] == pytest.approx(0.051)


def test_per_record_metrics_take_one_record() -> None:
    record = good(tokens=3)
    assert d.server_latency_ms(record) == pytest.approx(41) and d.ttft_ms(record) == pytest.approx(20)
    assert d.tpot_ms(record) == pytest.approx(10.5) and d.itl_ms(record) == pytest.approx([10, 10])
    assert d.server_latency_ms(with_fields(record, finish_ns=T0 - MS)) is None  # ends before it starts
