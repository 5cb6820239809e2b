"""One test per metric definition, on hand-built records with known timestamps."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.per_worker import load_imbalance, per_worker_table
from sglang_test_framework.metrics.trends import memory_trends
from sglang_test_framework.records import RequestRecord

MS = 1_000_000


def rec(
    i: int,
    arrival: int,
    send: int,
    chunks: list[tuple[int, int]],
    finish: int,
    ok: bool = True,
    prompt: int = 100,
    cached: int | None = None,
    worker: str | None = None,
) -> RequestRecord:
    return RequestRecord(
        f"r{i}",
        prompt_len=prompt,
        scheduled_ns=arrival * MS,
        arrival_ns=arrival * MS,
        send_ns=send * MS,
        first_token_ns=chunks[0][0] * MS if chunks else None,
        finish_ns=finish * MS,
        chunk_ns=[t * MS for t, _ in chunks],
        chunk_tokens=[k for _, k in chunks],
        output_tokens=sum(k for _, k in chunks),
        success=ok,
        cached_tokens=cached,
        worker_id=worker,
        error=None if ok else "boom",
        error_type=None if ok else "http",
    )


R1 = rec(1, 1000, 1000, [(1050, 1), (1060, 1), (1090, 3)], 1100, cached=50)
R2 = rec(2, 1000, 1200, [(1300, 1), (1320, 1)], 1400, cached=0)
R3 = rec(3, 1500, 1500, [], 1510, ok=False)


def test_per_request_latencies() -> None:
    assert d.server_latency_ms(R2) == 200 and d.total_latency_ms(R2) == 400 and d.queue_time_ms(R2) == 200
    assert d.ttft_ms(R1) == 50 and d.schedule_lag_ms(R1) == 0


def test_itl_spreads_a_multi_token_chunk() -> None:
    assert d.itl_ms(R1) == [10.0, 10.0, 10.0, 10.0]


def test_tpot_only_with_more_than_one_token() -> None:
    assert d.tpot_ms(R1) == pytest.approx((100 - 50) / 4)
    one = rec(4, 0, 0, [(10, 1)], 20)
    assert d.tpot_ms(one) is None


def test_run_level_metrics() -> None:
    recs = [R1, R2, R3]
    assert d.duration_s(recs) == pytest.approx(0.51)
    assert d.concurrency(recs, 0.5) == pytest.approx((0.1 + 0.2) / 0.5)
    assert d.max_in_flight(recs) == 1  # R1 finishes before R2 is sent
    assert d.max_queue_depth(recs) == 1
    assert d.cache_hit_rate(recs) == pytest.approx(50 / 200)
    assert d.peak_output_throughput(recs) == 7


def test_stats_and_goodput() -> None:
    s = d.stats([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["median"] == 2.5 and s["max"] == 4.0
    g = d.slo_attainment([R1, R2, R3], {"ttft": 60.0}, 2.0)
    assert g["slo_attainment"] == pytest.approx(1 / 3) and g["request_goodput"] == 0.5
    with pytest.raises(ValueError, match="unknown SLO"):
        d.slo_attainment([R1], {"latency": 1.0}, 1.0)


def test_collector_summary_streaming_jsonl_and_exports(tmp_path: Path) -> None:
    c = MetricsCollector(tmp_path / "requests.jsonl")
    for i, r in enumerate((R1, R2, R3), 1):
        c.add_record(r)
        assert len((tmp_path / "requests.jsonl").read_text().splitlines()) == i  # flushed per record
    m = c.get_metrics()
    assert m["completed"] == 2 and m["failed"] == 1 and m["errors_by_type"] == {"http": 1}
    assert m["mean_ttft"] == pytest.approx(75.0) and m["p99_server_latency"] is not None
    assert RequestRecord.from_dict(json.loads((tmp_path / "requests.jsonl").read_text().splitlines()[0])) == R1
    for fmt in ("json", "csv", "parquet"):
        path = c.export_metrics(fmt, tmp_path / f"out.{fmt}")
        assert path.stat().st_size > 0
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 3
    with pytest.raises(ValueError, match="xlsx"):
        c.export_metrics("xlsx", tmp_path / "x")
    bench = c.bench_serving_summary({"tag": "t"})
    for key in ("duration", "completed", "mean_ttft_ms", "p99_itl_ms", "request_throughput", "concurrency"):
        assert key in bench


def test_per_worker_table_and_imbalance() -> None:
    recs = [rec(i, 0, 0, [(10, 1)], 20, worker=w, cached=10) for i, w in enumerate(["a", "a", "a", "b", None])]
    c = MetricsCollector()
    for r in recs:
        c.add_record(r)
    table = per_worker_table(c.to_dataframe(), ["a", "b"])
    assert list(table["requests"]) == [3, 1, 1] and table.iloc[-1]["worker_id"] == "unattributed"
    assert load_imbalance(table) == pytest.approx(3 / 2)


def test_memory_trend_flags_steady_growth() -> None:
    rows = [{"t_s": t, "target": "s", "metric": "process_rss_bytes", "value": (100 + 2 * t) * 2**20} for t in range(60)]
    rows += [{"t_s": t, "target": "flat", "metric": "process_rss_bytes", "value": 100 * 2**20} for t in range(60)]
    trends = {t.target: t for t in memory_trends(pd.DataFrame(rows))}
    assert trends["s"].leak_suspected and trends["s"].slope_mb_per_min == pytest.approx(120, rel=1e-3)
    assert not trends["flat"].leak_suspected
