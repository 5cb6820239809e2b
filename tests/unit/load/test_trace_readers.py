"""Trace readers (Mooncake JSONL, Azure CSV, generic JSONL/CSV), row selection and the trace config fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from sglang_test_framework.config.workload import WorkloadConfig
from sglang_test_framework.errors import DatasetError
from sglang_test_framework.traces import TraceWindow, detect_format, read_trace, select_rows


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mooncake_rows_are_sorted_and_start_at_zero(tmp_path: Path) -> None:
    f = _jsonl(
        tmp_path / "t.jsonl",
        [
            {"timestamp": 2500, "input_length": 600, "output_length": 3, "hash_ids": [0, 2]},
            {"timestamp": 1000, "input_length": 512, "output_length": 5, "hash_ids": [0]},
            {"timestamp": 1000.5, "input_length": 1030, "output_length": 7, "hash_ids": [0, 1, 3]},
        ],
    )
    trace = read_trace(f)
    assert trace.format == "mooncake" and trace.origin_ns == 1_000_000_000
    assert [r.timestamp_ns for r in trace.rows] == [0, 500_000, 1_500_000_000]
    assert [r.index for r in trace.rows] == [1, 2, 0]
    assert trace.rows[1].segments(512) == [(("h", 0), 512), (("h", 1), 512), (("h", 3), 6)]


def test_azure_timestamps_keep_100ns_resolution(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:47.0000001,10,2\n"
    )
    trace = read_trace(f)
    assert detect_format(f) == "azure"
    assert [r.timestamp_ns for r in trace.rows] == [0, 319_410_100]
    assert trace.rows[0].segments(512) == [(("u", 0), 374)]  # no sharing invented


def test_generic_formats_with_prefix_and_session(tmp_path: Path) -> None:
    csv_file = tmp_path / "g.csv"
    csv_file.write_text(
        "timestamp_s,input_length,output_length,prefix_id,prefix_length,session_id\n"
        "0.5,100,4,sys,60,a\n0.0,80,4,sys,60,b\n1.25,30,2,,,a\n"
    )
    trace = read_trace(csv_file)
    assert trace.format == "generic" and trace.origin_ns == 0
    assert [(r.timestamp_ns, r.session_id) for r in trace.rows] == [(0, "b"), (500_000_000, "a"), (1_250_000_000, "a")]
    assert trace.rows[0].segments(512) == [(("p", "sys"), 60), (("u", 1), 20)]
    assert trace.rows[2].segments(512) == [(("u", 2), 30)]
    ms = _jsonl(
        tmp_path / "g.jsonl", [{"timestamp_ms": 7, "input_length": 600, "output_length": 1, "hash_ids": [4, 9]}]
    )
    assert read_trace(ms, block_size=512).rows[0].hash_ids == (4, 9)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [0]}], r"need ceil\(600/512\) = 2"),
        ([{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []}], "input_length must be"),
        ([{"timestamp": -1, "input_length": 5, "output_length": 1, "hash_ids": [0]}], "timestamp must be"),
        (
            [
                {"timestamp": 0, "input_length": 512, "output_length": 1, "hash_ids": [0]},
                {"timestamp": 1, "input_length": 100, "output_length": 1, "hash_ids": [0]},
            ],
            "hash id 0 is a block of 100 tokens",
        ),
    ],
)
def test_malformed_mooncake_rows_name_the_problem(tmp_path: Path, rows: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        read_trace(_jsonl(tmp_path / "bad.jsonl", rows))


def test_malformed_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": 5, "output_length": 1}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        read_trace(bad)
    azure = tmp_path / "az.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,1\n")
    with pytest.raises(DatasetError, match=r"az.csv:2: TIMESTAMP 'yesterday'"):
        read_trace(azure)
    generic = _jsonl(
        tmp_path / "g.jsonl", [{"timestamp_s": 0, "timestamp_ms": 1, "input_length": 5, "output_length": 1}]
    )
    with pytest.raises(DatasetError, match="exactly one of timestamp_s or timestamp_ms"):
        read_trace(generic)
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match="no rows"):
        read_trace(empty, "mooncake")


def test_select_rows_window_cap_idle_gap_and_speedup(tmp_path: Path) -> None:
    times_ms = [0, 1000, 2000, 30000, 31000, 32000]
    f = _jsonl(
        tmp_path / "t.jsonl",
        [{"timestamp": t, "input_length": 8, "output_length": 1, "hash_ids": [i]} for i, t in enumerate(times_ms)],
    )
    trace = read_trace(f)
    rows, offsets = select_rows(trace, TraceWindow(speedup=2.0))
    assert offsets == [0.0, 0.5, 1.0, 15.0, 15.5, 16.0]
    rows, offsets = select_rows(trace, TraceWindow(max_idle_gap_s=3.0))
    assert offsets == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]
    rows, offsets = select_rows(trace, TraceWindow(start_s=1.0, max_duration_s=30.0, max_rows=3))
    assert [r.hash_ids[0] for r in rows] == [1, 2, 3] and offsets == [0.0, 1.0, 29.0]
    rows, _ = select_rows(trace, TraceWindow(row_start=4, row_end=6))
    assert [r.hash_ids[0] for r in rows] == [4, 5]


def test_trace_config_holds_the_number_of_requests_sent(tmp_path: Path) -> None:
    rows = [{"timestamp": 1000 * i, "input_length": 5, "output_length": 1, "hash_ids": [i]} for i in range(10)]
    f = _jsonl(tmp_path / "t.jsonl", rows)
    assert WorkloadConfig(dataset_name="trace", dataset_path=f).num_prompts == 10  # every row
    assert WorkloadConfig(dataset_name="trace", dataset_path=f, num_prompts=4).num_prompts == 4
    assert WorkloadConfig(dataset_name="trace", dataset_path=f, num_prompts=70).num_prompts == 10  # at most
    cfg = WorkloadConfig(dataset_name="trace", dataset_path=f, trace_start_s=2.0, trace_max_duration_s=5.0)
    assert cfg.num_prompts == 5  # rows at 2, 3, 4, 5, 6 s
    assert WorkloadConfig(dataset_name="trace", dataset_path=f, trace_rows=[3, 9]).num_prompts == 6
    dumped = cfg.with_updates(trace_speedup=4.0)
    assert dumped.num_prompts == 5 and "num_prompts" not in dumped.explicit_values()
    with pytest.raises(ValidationError, match=r"dataset_path: no rows of .* in the selected window"):
        WorkloadConfig(dataset_name="trace", dataset_path=f, trace_start_s=100.0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": 5}\n')
    with pytest.raises(ValidationError, match=r"dataset_path: .*bad.jsonl:1: output_length must be an integer"):
        WorkloadConfig(dataset_name="trace", dataset_path=bad)


def test_trace_config_fields(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "t.jsonl", [{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [0]}])
    assert WorkloadConfig(dataset_name="trace", dataset_path=f, num_prompts=7).num_prompts == 1
    cases = [
        ({"dataset_name": "random", "trace_speedup": 2.0}, "trace_speedup: applies only to dataset_name='trace'"),
        ({"dataset_name": "trace"}, "dataset_path: required when dataset_name='trace'"),
        ({"dataset_name": "trace", "dataset_path": f, "request_rate": 5.0}, "request_rate: not used by"),
        ({"dataset_name": "trace", "dataset_path": f, "duration_s": 5.0}, "duration_s: not used by"),
        ({"dataset_name": "trace", "dataset_path": f, "trace_rows": [5, 2]}, "trace_rows: .*0 ≤ START < END"),
        ({"dataset_name": "trace", "dataset_path": f, "trace_speedup": 0}, "trace_speedup"),
        ({"dataset_name": "random", "trace_sessions": "closed"}, "trace_sessions: applies only to dataset_name"),
        ({"dataset_name": "trace", "dataset_path": f, "trace_think_time_s": 1.0}, "trace_think_time_s: applies only"),
        ({"dataset_name": "trace", "dataset_path": f, "routing_key_by": "session"}, "needs trace_sessions='closed'"),
    ]
    for values, message in cases:
        with pytest.raises(ValidationError, match=message):
            WorkloadConfig(**values)  # type: ignore[arg-type]
