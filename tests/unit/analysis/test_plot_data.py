"""The data behind the node plots equals the report's numbers: peak token throughput, latency
percentiles, cache hit rate; warmup samples are dropped from the server series."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from sglang_test_framework.analysis import plot_data
from sglang_test_framework.analysis.plot_data import node_plot_data, output_throughput_series, server_series
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 5_000_000_000_000


def make_records(n: int = 120, seed: int = 7) -> list[RequestRecord]:
    """Open-loop requests over ~6 s: chunks of 1–3 tokens, some failures, some without cache reports."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        send = T0 + int(i * 50 * MS + rng.random() * 10 * MS)
        chunks, tokens, t = [], [], send + rng.randint(5, 80) * MS
        for _ in range(rng.randint(1, 40)):
            chunks.append(t)
            tokens.append(rng.choice((1, 1, 2, 3)))
            t += rng.randint(2, 30) * MS
        ok = i % 13 != 5
        records.append(
            RequestRecord(
                f"r{i}",
                prompt_len=rng.randint(50, 500),
                scheduled_ns=send - 2 * MS,
                arrival_ns=send - MS,
                send_ns=send,
                first_token_ns=chunks[0],
                finish_ns=chunks[-1] + MS,
                chunk_ns=chunks,
                chunk_tokens=tokens,
                output_tokens=sum(tokens),
                cached_tokens=rng.randint(0, 40) if i % 4 else None,
                success=ok,
                error_type=None if ok else "stream",
            )
        )
    return records


def test_peak_of_the_throughput_series_is_the_reported_peak() -> None:
    records = make_records()
    series = output_throughput_series(records)
    assert series["output_tokens_per_s"].max() == d.peak_output_throughput(records)
    ok = [r for r in records if r.success]
    assert series["output_tokens_per_s"].sum() == sum(r.output_tokens for r in ok)
    assert series["t_s"].iloc[0] == 0.0 and (np.diff(series["t_s"]) == 1.0).all()  # 1 s buckets from the first send
    columns = output_throughput_series(RequestColumns.from_records(records))
    pd.testing.assert_frame_equal(series, columns)


def test_chunked_reading_gives_the_same_series(monkeypatch: pytest.MonkeyPatch) -> None:
    records = make_records(200, seed=3)
    whole = output_throughput_series(records)
    monkeypatch.setattr(plot_data, "CHUNK_ROWS", 7)
    pd.testing.assert_frame_equal(output_throughput_series(records), whole)
    data = node_plot_data(records, pd.DataFrame(), pd.DataFrame())
    pd.testing.assert_frame_equal(data.output_throughput, whole)


def test_node_plot_data_matches_the_summary() -> None:
    records = make_records()
    summary = summarize(records)
    data = node_plot_data(records, pd.DataFrame(), pd.DataFrame())
    for metric in ("server_latency", "total_latency", "ttft", "tpot"):
        values = data.latency.loc[data.latency["metric"] == metric, "value_ms"].to_numpy(dtype=float)
        assert d.stats(values) == {k[: -len(metric) - 1]: v for k, v in summary.items() if k.endswith(f"_{metric}")}
    itl = data.latency.loc[data.latency["metric"] == "itl", "value_ms"].to_numpy(dtype=float)
    assert itl.size == sum(len(d.itl_ms(r)) for r in records if r.success)
    assert d.stats(itl)["p99"] == pytest.approx(summary["p99_itl"], rel=1e-12)
    assert data.cache_hit_rate["cache_hit_rate"].iloc[-1] == summary["cache_hit_rate"]
    assert data.cache_hit_rate["t_s"].is_monotonic_increasing
    assert int(data.finished["completed"].sum()) == summary["completed"]
    assert int(data.finished["failed"].sum()) == summary["failed"]
    assert len(data.requests) == len(records) and data.requests["send_t_s"].min() == 0.0
    assert data.output_throughput["output_tokens_per_s"].max() == summary["peak_output_throughput"]


def test_itl_values_are_thinned_beyond_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    records = make_records()
    full = node_plot_data(records, pd.DataFrame(), pd.DataFrame())
    n_itl = int((full.latency["metric"] == "itl").sum())
    limit = n_itl // 4
    stride = -(-n_itl // limit)
    monkeypatch.setattr(plot_data, "MAX_ITL_POINTS", limit)
    thin = node_plot_data(records, pd.DataFrame(), pd.DataFrame())
    assert thin.itl_stride == stride >= 4
    assert int((thin.latency["metric"] == "itl").sum()) == -(-n_itl // stride) <= limit


def _sample(t_s: float, metric: str, value: float, target: str = "server_0") -> dict[str, object]:
    return {"t_s": t_s, "target": target, "metric": metric, "labels": "", "value": value}


def test_server_series_drops_the_warmup() -> None:
    collector = MetricsCollector(run_start_ns=T0 - 1_000 * MS)  # the sampler started 1 s before the first send
    for record in make_records(10):
        collector.add_record(record)
    requests = collector.to_dataframe()
    first_send_s = float(requests["send_s"].min())
    first_token_s = float(requests["first_token_s"].min())
    assert first_send_s >= 1.0
    ts = pd.DataFrame(
        [
            _sample(0.5, "sglang:num_running_reqs", 0.0),  # before the run: dropped
            _sample(0.5, "sglang:cache_hit_rate", 0.99),  # warmup's last batch: dropped
            _sample(first_send_s + 0.001, "sglang:cache_hit_rate", 0.99),  # still the warmup batch: dropped
            _sample(first_send_s + 0.001, "sglang:num_running_reqs", 1.0),
            _sample(first_token_s + 0.01, "sglang:cache_hit_rate", 0.25),
            _sample(first_token_s + 0.01, "scrape_error", 1.0),
        ]
    )
    out = server_series(ts, requests)
    assert list(zip(out["metric"], out["value"], strict=True)) == [
        ("sglang:num_running_reqs", 1.0),
        ("sglang:cache_hit_rate", 0.25),
    ]
    assert out["t_s"].tolist() == pytest.approx([0.001, first_token_s - first_send_s + 0.01])


def test_last_batch_gauges_wait_for_their_own_worker() -> None:
    requests = pd.DataFrame(
        {"send_s": [0.0, 0.1], "first_token_s": [0.05, 0.6], "worker_id": ["w0", "w1"], "success": [True, True]}
    )
    ts = pd.DataFrame(
        [_sample(0.3, "sglang:cache_hit_rate", 0.9, "w0"), _sample(0.3, "sglang:cache_hit_rate", 0.9, "w1")]
    )
    assert server_series(ts, requests)["target"].tolist() == ["w0"]  # w1's first token came at 0.6 s


def test_empty_inputs() -> None:
    assert output_throughput_series([]).empty
    data = node_plot_data([], pd.DataFrame(), pd.DataFrame())
    assert data.requests.empty and data.output_throughput.empty and data.server.empty
    assert data.cache_hit_rate.empty and data.finished.empty
