"""compare_results: ratios vs a baseline, repeated runs → mean ± 95% CI, bench_serving files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.analysis.compare import compare_results, load_result_file
from sglang_test_framework.errors import FrameworkError


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data) + "\n")
    return path


def three_files(tmp_path: Path) -> list[Path]:
    return [
        write(
            tmp_path / "a.json",
            {"tag": "a", "request_throughput": 10.0, "p99_server_latency": 100.0, "context": {"request_rate": 1}},
        ),
        write(
            tmp_path / "b1.json",
            {"tag": "b", "request_throughput": 20.0, "p99_server_latency": 40.0, "context": {"request_rate": 2}},
        ),
        write(
            tmp_path / "b2.json",
            {"tag": "b", "request_throughput": 22.0, "p99_server_latency": 60.0, "context": {"request_rate": 2}},
        ),
    ]


def test_ratios_speedups_and_confidence_interval(tmp_path: Path) -> None:
    res = compare_results(three_files(tmp_path))
    t = res.table
    assert list(t.index) == ["a", "b"] and list(t["runs"]) == [1, 2] and res.baseline == "a"
    assert t.loc["b", "request_throughput"] == 21.0
    assert t.loc["b", "request_throughput_ratio"] == pytest.approx(2.1)
    assert t.loc["b", "request_throughput_speedup"] == pytest.approx(2.1)
    assert t.loc["b", "p99_server_latency_ratio"] == pytest.approx(0.5)
    assert t.loc["b", "p99_server_latency_speedup"] == pytest.approx(2.0)  # half the latency = 2× better
    # n = 2: t(0.975, 1) = 12.706, s = √2, half-width = 12.706 · √2 / √2
    assert t.loc["b", "request_throughput_ci95"] == pytest.approx(12.7062, rel=1e-4)
    assert t["request_throughput_ci95"].isna()["a"]
    assert t["mean_ttft"].isna()["a"]  # absent from the files


def test_text_markdown_and_plot(tmp_path: Path) -> None:
    res = compare_results(three_files(tmp_path), sweep_variable="request_rate")
    text = res.to_text()
    assert "baseline: a" in text and "21.00 ±12.71 (x2.10)" in text and "request_rate" in text
    assert res.to_markdown().startswith("| label | runs | request_rate |")
    assert res.save_plot(tmp_path / "c.png").stat().st_size > 5_000
    assert list(res.table["request_rate"]) == [1.0, 2.0]


def test_labels_and_baseline_by_label(tmp_path: Path) -> None:
    res = compare_results(three_files(tmp_path), labels=["x", "y", "z"], baseline="y")
    assert list(res.table.index) == ["x", "y", "z"]
    assert res.table.loc["x", "request_throughput_ratio"] == pytest.approx(0.5)
    with pytest.raises(FrameworkError, match="labels"):
        compare_results(three_files(tmp_path), labels=["x"])
    with pytest.raises(FrameworkError, match="baseline"):
        compare_results(three_files(tmp_path), baseline=5)
    with pytest.raises(FrameworkError, match="at least one"):
        compare_results([])


def test_bench_serving_jsonl_is_read_by_its_last_line(tmp_path: Path) -> None:
    f = tmp_path / "sglang_1122_200_sharegpt.jsonl"
    lines = [{"request_throughput": 1.0}, {"request_throughput": 3.0, "mean_ttft_ms": 7.0, "p99_e2e_latency_ms": 90.0}]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = compare_results([f])
    row = res.table.iloc[0]
    assert row["request_throughput"] == 3.0 and row["mean_ttft"] == 7.0 and row["p99_server_latency"] == 90.0
    assert res.baseline == "sglang_1122_200_sharegpt"


def test_pretty_printed_and_broken_files(tmp_path: Path) -> None:
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps({"request_throughput": 2.0}, indent=2))
    assert load_result_file(pretty) == {"request_throughput": 2.0}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json\n")
    with pytest.raises(FrameworkError, match=r"broken\.json"):
        load_result_file(broken)
    with pytest.raises(FrameworkError, match="missing or empty"):
        load_result_file(tmp_path / "nope.json")
