"""Plots write non-empty PNGs; the token-rate helper spreads tokens correctly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sglang_test_framework.analysis.plots import plot_comparison, plot_node_results, tokens_per_second
from sglang_test_framework.analysis.sweep_plots import plot_sweep
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 3_000_000_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def requests_df() -> pd.DataFrame:
    c = MetricsCollector()
    for i in range(30):
        send = T0 + i * 100 * MS
        chunks = [send + (20 + 5 * (i % 4) + 10 * k) * MS for k in range(5)]
        c.add_record(
            RequestRecord(
                f"r{i}",
                prompt_len=50,
                scheduled_ns=send,
                arrival_ns=send,
                send_ns=send,
                first_token_ns=chunks[0],
                finish_ns=chunks[-1] + MS,
                chunk_ns=chunks,
                chunk_tokens=[1] * 5,
                output_tokens=5,
                success=i % 10 != 9,
                error_type=None if i % 10 != 9 else "http",
            )
        )
    return c.to_dataframe()


def timeseries_df() -> pd.DataFrame:
    rows = []
    for t in range(5):
        for metric, value in (
            ("sglang:num_running_reqs", t),
            ("sglang:num_queue_reqs", 4 - t),
            ("sglang:token_usage", t / 10),
            ("sglang:cache_hit_rate", 0.5),
        ):
            rows.append({"t_s": float(t), "target": "s1", "metric": metric, "labels": "", "value": float(value)})
    return pd.DataFrame(rows)


def assert_pngs(paths: list[Path]) -> None:
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, p


def test_node_plots_with_and_without_server_series(tmp_path: Path) -> None:
    paths = plot_node_results(requests_df(), timeseries_df(), tmp_path / "plots")
    assert [p.name for p in paths] == [
        "latency_distributions.png",
        "latency_over_time.png",
        "throughput_over_time.png",
        "server_timeseries.png",
    ]
    assert_pngs(paths)
    assert len(plot_node_results(requests_df(), pd.DataFrame(), tmp_path / "no_ts")) == 3
    assert plot_node_results(pd.DataFrame(), pd.DataFrame(), tmp_path / "empty") == []


def test_tokens_are_spread_between_first_token_and_finish() -> None:
    edges = np.arange(0.0, 4.0)
    tok = tokens_per_second(np.array([0.5, 2.5]), np.array([1.5, 2.5]), np.array([10.0, 3.0]), edges)
    assert tok == pytest.approx([5.0, 5.0, 3.0])  # the zero-length span lands in its finish second


def test_comparison_plot_with_a_sweep_variable(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "request_rate": [1.0, 2.0, 4.0],
            "request_throughput": [1.0, 2.0, 3.5],
            "request_throughput_ci95": [0.1, np.nan, 0.2],
            "request_throughput_ratio": [1.0, 2.0, 3.5],
            "output_throughput": [100.0, 200.0, 350.0],
            "median_server_latency": [100.0, 120.0, 300.0],
            "p99_server_latency": [150.0, 200.0, 900.0],
        },
        index=pd.Index(["r1", "r2", "r4"], name="label"),
    )
    assert_pngs([plot_comparison(table, tmp_path / "cmp.png", sweep_variable="request_rate")])
    assert_pngs([plot_comparison(table, tmp_path / "cmp_plain.png")])


def test_sweep_plots(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "point": ["a", "b"],
            "request_rate": [1.0, 2.0],
            "output_throughput": [10.0, 20.0],
            "p50_server_latency": [5.0, 6.0],
            "p99_server_latency": [9.0, 12.0],
            "mean_ttft": [1.0, 2.0],
            "p99_ttft": [2.0, 3.0],
        }
    )
    assert_pngs(plot_sweep(table, ["request_rate"], tmp_path))
