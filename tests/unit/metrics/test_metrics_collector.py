"""MetricsCollector: JSONL streaming, summary keys, per-request table, exports, bench_serving keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.table import REQUEST_COLUMNS
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 7_000_000_000_000


def rec(rid: str, send_ms: int, finish_ms: int, ok: bool = True, tokens: int = 3) -> RequestRecord:
    """Sent at ``send_ms`` after arriving 5 ms earlier; ``tokens`` one-token chunks 10 ms apart from +20 ms."""
    chunks = [T0 + (send_ms + 20 + 10 * i) * MS for i in range(tokens)] if ok else []
    return RequestRecord(
        rid,
        prompt_len=10,
        scheduled_ns=T0 + (send_ms - 5) * MS,
        arrival_ns=T0 + (send_ms - 5) * MS,
        send_ns=T0 + send_ms * MS,
        first_token_ns=chunks[0] if chunks else None,
        finish_ns=T0 + finish_ms * MS,
        chunk_ns=chunks,
        chunk_tokens=[1] * len(chunks),
        output_tokens=len(chunks),
        cached_tokens=4 if ok else None,
        success=ok,
        error=None if ok else "HTTP 500: boom",
        error_type=None if ok else "http",
        worker_id="w0",
    )


RECORDS = [rec("a", 5, 105), rec("b", 55, 255), rec("c", 300, 310, ok=False), rec("d", 400, 505)]

SPEC_KEYS = (
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "success_rate",
    "completed",
    "failed",
    "duration_s",
    "concurrency",
    "max_in_flight",
    "max_queue_depth",
    "cache_hit_rate",
    "errors_by_type",
)
LATENCIES = ("server_latency", "total_latency", "queue_time", "ttft", "itl", "tpot")
BENCH_KEYS = (
    "duration",
    "completed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "concurrency",
    "max_concurrent_requests",
    "max_output_tokens_per_s",
    "max_itl_ms",
)


def filled(path: Path | None = None) -> MetricsCollector:
    c = MetricsCollector(path)
    for r in RECORDS:
        c.add_record(r)
    return c


def test_records_are_written_to_jsonl_one_flushed_line_each(tmp_path: Path) -> None:
    path = tmp_path / "out" / "requests.jsonl"
    c = MetricsCollector(path)
    for n, r in enumerate(RECORDS, 1):
        c.add_record(r)
        assert len(path.read_text().splitlines()) == n  # readable before any close()
    lines = path.read_text().splitlines()
    assert [RequestRecord.from_dict(json.loads(x)) for x in lines] == RECORDS
    assert c.records == RECORDS
    c.close()
    c.add_record(rec("e", 600, 700))  # after close: appended, not truncated
    assert len(path.read_text().splitlines()) == len(RECORDS) + 1
    c.close()


def test_summary_has_the_spec_keys_and_counts_failures() -> None:
    m = filled().get_metrics()
    for key in SPEC_KEYS:
        assert key in m, key
    for metric in LATENCIES:
        for stat in ("mean", "median", "std", "p90", "p95", "p99"):
            assert f"{stat}_{metric}" in m, f"{stat}_{metric}"
    assert m["completed"] == 3 and m["failed"] == 1 and m["success_rate"] == 0.75
    assert m["errors_by_type"] == {"http": 1} and m["first_errors"] == ["c: HTTP 500: boom"]
    assert m["mean_server_latency"] == pytest.approx((100 + 200 + 105) / 3)  # the failed 10 ms is excluded
    assert m["mean_ttft"] == pytest.approx(20) and m["mean_itl"] == pytest.approx(10)
    assert m["mean_queue_time"] == pytest.approx(5) and m["max_in_flight"] == 2
    assert m["duration_s"] == pytest.approx(0.5) and m["request_throughput"] == pytest.approx(6.0)
    assert m["cache_hit_rate"] == pytest.approx(0.4) and m["scrape_errors"] == 0


def test_empty_collector_summarises_to_zeros_and_nones() -> None:
    c = MetricsCollector()
    m = c.get_metrics()
    assert m["completed"] == 0 and m["request_throughput"] == 0.0 and m["p99_ttft"] is None
    assert list(c.to_dataframe().columns) == list(REQUEST_COLUMNS)
    assert c.timeseries_dataframe().empty


def test_dataframe_has_one_row_per_request_relative_to_the_run_start() -> None:
    df = filled().to_dataframe()
    assert list(df["request_id"]) == ["a", "b", "c", "d"]
    assert df.loc[0, "scheduled_s"] == 0.0 and df.loc[0, "send_s"] == pytest.approx(0.005)
    assert df.loc[1, "ttft_ms"] == pytest.approx(20) and df.loc[1, "server_latency_ms"] == pytest.approx(200)
    assert df.loc[1, "total_latency_ms"] == pytest.approx(205) and df.loc[1, "queue_time_ms"] == pytest.approx(5)
    assert bool(df.loc[2, "success"]) is False and df.loc[2, "error_type"] == "http"
    assert df["first_token_s"].isna()[2] and df["tpot_ms"].isna()[2]
    explicit = MetricsCollector(run_start_ns=T0 - 1_000 * MS)
    explicit.add_record(RECORDS[0])
    assert explicit.to_dataframe().loc[0, "send_s"] == pytest.approx(1.005)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_exports_round_trip(tmp_path: Path, fmt: str) -> None:
    c = filled()
    path = c.export_metrics(fmt, tmp_path / "x" / f"requests.{fmt}")
    back = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    expected = c.to_dataframe()
    assert list(back.columns) == list(expected.columns)
    for col in ("request_id", "success", "output_tokens", "prompt_len"):
        assert back[col].tolist() == expected[col].tolist()
    for col in ("ttft_ms", "server_latency_ms", "send_s"):
        pd.testing.assert_series_equal(back[col].astype(float), expected[col].astype(float), check_names=False)


def test_json_export_is_the_summary_on_one_strict_line(tmp_path: Path) -> None:
    c = filled()
    path = c.export_metrics("json", tmp_path / "summary.json")
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0], parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    summary = c.get_metrics()
    assert data["completed"] == summary["completed"]
    assert math.isclose(data["p99_server_latency"], summary["p99_server_latency"])
    assert len(pd.read_json(path, lines=True)) == 1


def test_unknown_export_format_names_the_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'xlsx'.*json, csv, parquet"):
        filled().export_metrics("xlsx", tmp_path / "x.xlsx")


def test_bench_serving_summary_uses_bench_serving_key_names() -> None:
    c = filled()
    bench = c.bench_serving_summary({"tag": "t1", "backend": "sim", "model": "m"})
    for key in BENCH_KEYS:
        assert key in bench, key
    for metric in ("e2e_latency", "ttft", "tpot", "itl"):
        for stat in ("mean", "median", "std", "p90", "p95", "p99"):
            assert f"{stat}_{metric}_ms" in bench, f"{stat}_{metric}_ms"
    m = c.get_metrics()
    assert bench["mean_e2e_latency_ms"] == m["mean_server_latency"] and bench["duration"] == m["duration_s"]
    assert bench["max_concurrent_requests"] == m["max_in_flight"]
    assert bench["tag"] == "t1" and bench["model"] == "m" and bench["dataset_name"] is None
    assert "request_goodput" not in bench


def test_bench_serving_summary_adds_goodput_with_slos() -> None:
    bench = filled().bench_serving_summary(slos_ms={"e2el": 150})
    assert bench["goodput_slos_ms"] == {"e2el": 150}
    assert bench["slo_attainment"] == pytest.approx(2 / 4) and bench["request_goodput"] == pytest.approx(2 / 0.5)
    assert bench["slo_attainment_by_metric"] == {"e2el": 0.5}
