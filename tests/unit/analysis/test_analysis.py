"""Reports, plots and comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sglang_test_framework.analysis.compare import compare_results, t_quantile_975
from sglang_test_framework.analysis.plots import plot_node_results
from sglang_test_framework.analysis.report import format_node_report, format_table


def test_report_has_the_key_lines() -> None:
    summary = {
        "completed": 10,
        "failed": 1,
        "success_rate": 10 / 11,
        "request_throughput": 9.87,
        "p99_server_latency": 612.8,
        "mean_queue_time": 67.4,
        "max_queue_depth": 42,
        "errors_by_type": {"http": 1},
        "first_errors": ["r1: HTTP 500"],
    }
    summary["max_server_queue_depth"] = 7.0
    text = format_node_report(summary, {"model": "m", "backend": "sim", "request_rate": 10.0})
    assert "server 7" in text
    for line in (
        "Node Test Results",
        "Request Throughput: 9.87 req/s",
        "P99 Server Latency",
        "client 42",
        "http: 1",
    ):
        assert line in text
    assert "value" in format_table([{"name": "a", "value": 1.5}])


def test_plots_are_written(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "success": [True] * 5,
            "ttft_ms": [1.0, 2, 3, 4, 5],
            "server_latency_ms": [5.0] * 5,
            "tpot_ms": [1.0] * 5,
            "total_latency_ms": [6.0] * 5,
            "send_s": range(5),
            "finish_s": [1.0, 2, 3, 4, 5],
            "output_tokens": [10] * 5,
        }
    )
    ts = pd.DataFrame(
        {
            "t_s": [0.0, 1.0],
            "target": ["s", "s"],
            "metric": ["sglang:num_queue_reqs"] * 2,
            "labels": ["", ""],
            "value": [0.0, 3.0],
        }
    )
    paths = plot_node_results(df, ts, tmp_path)
    assert len(paths) == 2 and all(p.stat().st_size > 1000 for p in paths)


def test_compare_ratios_and_confidence_interval(tmp_path: Path) -> None:
    files = []
    for i, (tag, thr) in enumerate((("a", 10.0), ("b", 20.0), ("b", 22.0))):
        f = tmp_path / f"r{i}.json"
        f.write_text(json.dumps({"tag": tag, "request_throughput": thr, "mean_ttft": 5.0}) + "\n")
        files.append(f)
    res = compare_results(files)
    assert res.table.loc["b", "runs"] == 2
    assert res.table.loc["b", "request_throughput_ratio"] == pytest.approx(2.1)
    assert res.table.loc["b", "request_throughput_ci95"] == pytest.approx(12.706 * 1.41421356 / 1.41421356, rel=1e-3)
    assert "x2.10" in res.to_text() and res.to_markdown().startswith("| label")
    assert res.save_plot(tmp_path / "c.png").stat().st_size > 1000
    assert t_quantile_975(1000) == 1.96


def test_bench_serving_files_are_read_by_their_last_line(tmp_path: Path) -> None:
    f = tmp_path / "sglang_bench.jsonl"
    f.write_text(
        json.dumps({"request_throughput": 1.0})
        + "\n"
        + json.dumps({"request_throughput": 3.0, "mean_ttft_ms": 7.0})
        + "\n"
    )
    res = compare_results([f])
    assert res.table["request_throughput"].iloc[0] == 3.0 and res.table["mean_ttft"].iloc[0] == 7.0
