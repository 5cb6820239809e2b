"""Answers consistent with capacity, on the simulator with max_running_requests=2: the SLO search and the
saturation sweep against the throughput a saturating burst measures, loads sized by duration with a
measurement window, and the search's own directories. Relations only: the machine may be loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.search_config import SLOSearchConfig
from sglang_test_framework.scenarios.node import NodeTest
from sglang_test_framework.scenarios.slo_search import find_max_rate

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
SERVER: dict[str, Any] = {
    "model_path": MODEL,
    "backend": "sim",
    "port": 0,
    "dataset_name": "random",
    "random_input_len": 64,
    "random_output_len": 32,
    "random_range_ratio": 1.0,
    "max_running_requests": 2,
    "progress": False,
    "write_plots": False,
}
SERVER_FLAGS = [
    "--max-running-requests",
    "2",
    "--dataset-name",
    "random",
    "--random-input-len",
    "64",
    "--random-output-len",
    "32",
    "--random-range-ratio",
    "1",
    "--port",
    "0",
    "-q",
]


@pytest.fixture(scope="module")
def capacity(tmp_path_factory: pytest.TempPathFactory) -> float:
    """Requests/s the server completes when it is never idle: a burst of 40 requests (rate inf)."""
    out = tmp_path_factory.mktemp("capacity")
    cfg = NodeConfig(**SERVER, num_prompts=40, request_rate=float("inf"), output_dir=out, collect_timeseries=False)
    summary = NodeTest(cfg).run().summary
    assert summary["completed"] == 40
    return float(summary["request_throughput"])


@pytest.mark.parametrize("sizing", [{"num_prompts": 20}, {"duration_s": 6.0}], ids=["num_prompts", "duration"])
def test_slo_search_answer_is_consistent_with_capacity(sizing: dict[str, Any], capacity: float, tmp_path: Path) -> None:
    earlier_run = tmp_path / "node_run"
    earlier_run.mkdir()
    (earlier_run / "summary.json").write_text('{"completed": 1}\n')
    search_dir = tmp_path / "search"
    search_dir.mkdir()
    (search_dir / "run.json").write_text('{"kind": "node", "started_at": "2024-01-01T00:00:00"}')
    base = NodeConfig(**SERVER, **sizing, request_rate=1.0, output_dir=earlier_run)
    # rates and the SLO scale with the measured capacity, so a slower (loaded) machine asks the same question
    start_rate = round(0.45 * capacity, 3)
    settings = SLOSearchConfig(
        slos_ms={"e2el": round(8_000 / capacity)},  # ≈ 4 × one request's service time at capacity
        start_rate=start_rate,
        max_rate=64 * capacity,
        bisect_steps=1,
        min_duration_s=4.0,
        min_requests=20,
        output_dir=search_dir,
    )
    result = find_max_rate(base, settings.slos_ms, search=settings)

    # the answer lies within a stated factor of the capacity; growth stopped once past it
    assert 0.4 * capacity <= result.best_rate <= 1.25 * capacity, (result.best_rate, capacity)
    assert result.capacity_rate is None or result.capacity_rate <= 1.3 * capacity
    assert result.best_goodput is not None and 0 < result.best_goodput <= 1.25 * capacity
    assert any(not p.passed for p in result.probes)
    assert max(p.request_rate for p in result.probes) <= 4 * start_rate  # 0.45 → 0.9 → 1.8 × C: stopped there
    for probe in result.probes:  # each probe at steady state: long enough, measured over its window
        assert probe.duration_s >= 4.0 and probe.requests >= 10
        assert probe.duration_s >= sizing.get("duration_s", 0.0)

    # the search's own directory, one run directory per probe, nothing written elsewhere
    assert json.loads((search_dir / "run.json").read_text())["kind"] == "slo-search"
    assert json.loads((search_dir / "run.json").read_text())["status"] == "completed"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("search.")], "the earlier run was set aside"
    probe_dirs = sorted((search_dir / "probes").iterdir())
    assert [d.name.split("-")[0] for d in probe_dirs] == [f"{i:02d}" for i in range(1, len(result.probes) + 1)]
    for probe, directory in zip(result.probes, probe_dirs, strict=True):
        run = json.loads((directory / "run.json").read_text())
        assert (run["kind"], run["status"]) == ("slo-search-probe", "completed")
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["measure_window"]["mode"] == "auto" and summary["request_rate"] == probe.request_rate
        assert probe.output_dir == str(directory)
    assert sorted(p.name for p in earlier_run.iterdir()) == ["summary.json"]
    saved = json.loads((search_dir / "slo_search.json").read_text())
    assert saved["best_rate"] == result.best_rate and len(saved["probes"]) == len(result.probes)


def test_saturation_sweep_marks_the_knee_near_capacity(
    capacity: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_dir = tmp_path / "saturation"
    argv = ["saturate", "--sweep-dir", str(sweep_dir), *SERVER_FLAGS]
    argv += ["--steps", "4", "--low-fraction", "0.55", "--high-fraction", "1.45"]
    argv += ["--min-duration-s", "5", "--min-requests", "20"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "knee: step" in out and "burst throughput" in out

    table = pd.read_csv(sweep_dir / "saturation.csv")
    knee = table[table["knee"]]
    assert len(knee) == 1
    knee_rate = float(knee["achieved_rate"].iloc[0])
    assert 0.45 * capacity <= knee_rate <= 1.15 * capacity, (knee_rate, capacity)
    assert not bool(knee["saturated"].iloc[0])
    over = list(table["saturated"])
    assert over[-1] or "no step over-saturated" in out, "the sweep runs until a step over-saturates"
    assert not any(over[:-1]), "and stops at the first"
    assert list(table["target_rate"]) == sorted(table["target_rate"])
    assert (table["achieved_rate"] <= 1.2 * capacity).all()
    saved = json.loads((sweep_dir / "saturation.json").read_text())
    assert saved["knee"]["step"] == int(knee["step"].iloc[0]) and saved["capacity_rate"] > 0
    assert (sweep_dir / "plots" / "saturation_curve.png").stat().st_size > 10_000
    page = (sweep_dir / "report.html").read_text(encoding="utf-8")
    assert "Saturation sweep" in page and "knee: step" in page and page.count("<img") == 1
    assert json.loads((sweep_dir / "run.json").read_text())["status"] == "completed"
    assert len(list((sweep_dir / "probes").iterdir())) == len(table) + 1  # the burst, then one per step


def test_a_duration_load_with_ramp_up_reports_its_window(capacity: float, tmp_path: Path) -> None:
    rate = round(0.5 * capacity, 3)
    cfg = NodeConfig(
        **SERVER,
        request_rate=rate,
        duration_s=6.0,
        ramp_up_s=1.0,
        measure_window="auto",
        output_dir=tmp_path,
    )
    total = round(rate * 0.5 + rate * 5)  # the ramp at its mean rate, then 5 s at the rate
    assert cfg.num_prompts == total
    test = NodeTest(cfg)
    results = test.run()
    summary = results.summary
    window = summary["measure_window"]
    assert (window["mode"], window["start_s"], window["end_s"], window["ramp_up_s"]) == ("auto", 1.0, 6.0, 1.0)
    assert window["requests"] + window["excluded_requests"] == summary["run_totals"]["total_requests"] == total
    assert summary["total_requests"] == window["requests"] >= 1
    assert summary["duration_s"] == 5.0
    assert summary["saturated"] is False, summary["saturation_reason"]  # half the capacity
    assert summary["offered_rate"] == window["requests"] / 5.0
    records = list(results.records)
    assert len(records) == total and max(r.scheduled_ns for r in records) - min(r.scheduled_ns for r in records) < 6e9
    report = test.analyze_results(results, print_report=False)
    assert "Measurement Window:" in report and "Offered Rate" in report
    line = json.loads((tmp_path / "summary.json").read_text())
    assert line["completed"] == summary["completed"] and line["measure_window"] == window
