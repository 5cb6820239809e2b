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


def group(tmp_path: Path, tag: str, values: list[float], **extra: Any) -> list[Path]:
    """One result file per repeated run of ``tag`` with the given request throughputs."""
    return [
        write(tmp_path / f"{tag}{i}.json", {"tag": tag, "request_throughput": v, "p99_server_latency": 100.0, **extra})
        for i, v in enumerate(values)
    ]


def test_a_clear_difference_is_significant_and_identical_groups_are_not(tmp_path: Path) -> None:
    files = group(tmp_path, "base", [10.0, 10.2, 9.8]) + group(tmp_path, "fast", [20.0, 20.4, 19.6])
    files += group(tmp_path, "same", [10.0, 10.2, 9.8])
    t = compare_results(files).table
    assert t.loc["fast", "request_throughput_speedup"] == pytest.approx(2.0)
    assert t["request_throughput_p_value"]["fast"] < 0.05
    assert t.loc["fast", "request_throughput_significant"] == 1.0
    assert t.loc["same", "request_throughput_p_value"] == pytest.approx(1.0)
    assert t.loc["same", "request_throughput_significant"] == 0.0
    assert t["request_throughput_p_value"].isna()["base"]  # the baseline is not tested against itself
    # identical latencies everywhere: no difference, p = 1
    assert t.loc["fast", "p99_server_latency_p_value"] == 1.0 and t.loc["fast", "p99_server_latency_speedup"] == 1.0


def test_single_runs_get_no_p_value(tmp_path: Path) -> None:
    t = compare_results(three_files(tmp_path)).table  # a: 1 run, b: 2 runs
    assert t["request_throughput_p_value"].isna().all() and t["request_throughput_significant"].isna().all()
    text = compare_results(three_files(tmp_path)).to_text()
    assert "x2.10 (p n/a: < 2 runs)" in text


def test_speedup_table_marks_significance(tmp_path: Path) -> None:
    files = group(tmp_path, "base", [10.0, 10.2, 9.8]) + group(tmp_path, "fast", [20.0, 20.4, 19.6])
    res = compare_results(files)
    text = res.to_text()
    assert "Welch's t-test" in text and "* = significant at 95%" in text
    row = next(r for r in res.speedup_rows() if r["metric"] == "request_throughput")
    assert row["fast"].startswith("x2.00 (p<0.001)") and row["fast"].endswith(" *")
    assert "base" not in row  # the baseline has no speedup column


def test_rates_are_compared_in_percentage_points(tmp_path: Path) -> None:
    files = group(tmp_path, "base", [1.0, 1.0], cache_hit_rate=0.0, success_rate=0.9)
    files += group(tmp_path, "warm", [1.0, 1.0], cache_hit_rate=0.2, success_rate=1.0)
    res = compare_results(files)
    t = res.table
    assert t["cache_hit_rate_ratio"].isna().all() and t["cache_hit_rate_speedup"].isna().all()
    assert t.loc["warm", "cache_hit_rate_diff_pp"] == pytest.approx(20.0)
    assert t.loc["warm", "success_rate_diff_pp"] == pytest.approx(10.0)
    cells = {r["metric"]: r for r in res.text_rows()}
    assert cells["cache_hit_rate"]["base"] == "0.00% ±0.00 (+0.00 pp)"
    assert cells["cache_hit_rate"]["warm"] == "20.00% ±0.00 (+20.00 pp)"
    assert "x0.2" not in res.to_text() and "(x" not in cells["cache_hit_rate"]["warm"]
    speedups = {r["metric"]: r for r in res.speedup_rows()}
    assert speedups["cache_hit_rate"]["warm"] == "+20.00 pp (p<0.001) *"
    assert "slo_attainment" not in cells  # optional: no run reports it


def repeated_run(tmp_path: Path, name: str, values: list[float], tag: str | None = None) -> Path:
    """A repeated run's directory as scenarios/repeats.py writes it: rep-<k>/summary.json plus a combined
    summary.json listing them."""
    run = tmp_path / name
    reps = []
    for k, v in enumerate(values):
        (run / f"rep-{k}").mkdir(parents=True)
        write(run / f"rep-{k}" / "summary.json", {"tag": tag, "request_throughput": v})
        reps.append(str((run / f"rep-{k}").resolve()))
    mean = sum(values) / len(values)
    write(run / "summary.json", {"tag": tag, "request_throughput": mean, "repeats": len(values), "repeat_dirs": reps})
    return run


def test_repeated_run_directories_are_groups(tmp_path: Path) -> None:
    a = repeated_run(tmp_path, "run_a", [10.0, 10.5, 9.5])
    b = repeated_run(tmp_path, "run_b", [15.0, 15.5, 14.5])
    res = compare_results([a, b])
    assert list(res.table.index) == ["run_a", "run_b"] and list(res.table["runs"]) == [3, 3]
    assert res.table.loc["run_b", "request_throughput_speedup"] == pytest.approx(1.5)
    assert res.table.loc["run_b", "request_throughput_significant"] == 1.0
    assert [Path(f["file"]).parent.name for f in res.files] == ["rep-0", "rep-1", "rep-2"] * 2
    via_summary = compare_results([a / "summary.json", b / "summary.json"], labels=["A", "B"], baseline=1)
    assert list(via_summary.table["runs"]) == [3, 3] and via_summary.baseline == "B"
    assert via_summary.table.loc["A", "request_throughput_ratio"] == pytest.approx(10.0 / 15.0)


def test_repeats_found_by_their_directories_and_tags(tmp_path: Path) -> None:
    a = repeated_run(tmp_path, "run_a", [10.0, 11.0], tag="mine")
    (a / "summary.json").unlink()  # interrupted before the combined summary: the rep-* directories still count
    (a / "rep-x").mkdir()  # not a repeat
    res = compare_results([a])
    assert list(res.table.index) == ["run_a"] and int(res.table["runs"].iloc[0]) == 2
    b = repeated_run(tmp_path, "run_b", [12.0, 13.0], tag="theirs")
    assert list(compare_results([b]).table.index) == ["theirs"]  # the combined summary's tag names the group
    plain = tmp_path / "single"
    plain.mkdir()
    write(plain / "summary.json", {"request_throughput": 1.0})
    assert list(compare_results([plain]).table.index) == ["single"]  # a run's summary.json: its directory
    with pytest.raises(FrameworkError, match=r"without summary\.json"):
        compare_results([tmp_path / "run_a" / "rep-x"])
