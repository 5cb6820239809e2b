"""Repeated runs on the simulator: one directory per repeat, the combined summary, and compare reading
the repeats as groups with speedups and their significance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sglang_test_framework.analysis.compare import load_result_file
from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.results import RepeatedRunResults
from sglang_test_framework.scenarios.node import NodeTest
from tests.conftest import sim_run_fields

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
PROMPTS = 10


def config(out: Path, **kw: Any) -> NodeConfig:
    values: dict[str, Any] = dict(
        **sim_run_fields(out),
        port=0,
        dataset_name="random",
        num_prompts=PROMPTS,
        random_input_len=64,
        random_output_len=8,
        request_rate=40.0,
        warmup_requests=1,
        repeats=2,
    )
    values.update(kw)
    return NodeConfig(**values)


def test_repeated_runs_and_their_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = NodeTest(config(tmp_path / "a", max_running_requests=4))
    results = test.run()
    assert isinstance(results, RepeatedRunResults) and len(results.repeats) == 2
    test.analyze_results(results)
    printed = capsys.readouterr().out
    assert "Repeated runs" in printed and "±95% CI" in printed
    run = tmp_path / "a"
    for k in range(2):  # each repeat a complete run of its own, with the same workload
        rep = load_result_file(run / f"rep-{k}" / "summary.json")
        assert rep["completed"] == PROMPTS and len((run / f"rep-{k}" / "requests.jsonl").read_text().splitlines()) == 10
        assert (run / f"rep-{k}" / "report.html").is_file()
    tables = [pd.read_csv(run / f"rep-{k}" / "requests.csv") for k in range(2)]
    prompts = [dict(zip(t["request_id"], t["prompt_len"], strict=True)) for t in tables]
    assert prompts[0] == prompts[1]  # repeat_seed 'same': identical prompts
    combined = load_result_file(run / "summary.json")
    assert combined["repeats"] == 2 and combined["completed"] == 2 * PROMPTS and combined["status"] == "completed"
    assert [Path(p).name for p in combined["repeat_dirs"]] == ["rep-0", "rep-1"]
    per_rep = [r.summary["request_throughput"] for r in results.repeats]
    stats = combined["repeat_stats"]["request_throughput"]
    assert stats["n"] == 2 and stats["values"] == per_rep and stats["mean"] == pytest.approx(sum(per_rep) / 2)
    assert combined["request_throughput"] == pytest.approx(stats["mean"])
    assert len(results.requests) == 2 * PROMPTS and set(results.requests["repeat"]) == {"rep-0", "rep-1"}
    assert len(results.records) == 2 * PROMPTS
    assert json.loads((run / "run.json").read_text())["kind"] == "node-repeats"
    assert (run / "report.html").is_file() and len(pd.read_csv(run / "repeats.csv")) == 2

    NodeTest(config(tmp_path / "b", max_running_requests=1)).run()
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(run), str(tmp_path / "b" / "summary.json"), "--output-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Welch's t-test" in text and "vs baseline a" in text
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert list(table.index) == ["a", "b"] and list(table["runs"]) == [2, 2]
    b_means = [
        r["request_throughput"]
        for r in (load_result_file(tmp_path / "b" / f"rep-{k}" / "summary.json") for k in range(2))
    ]
    assert table.loc["b", "request_throughput_speedup"] == pytest.approx((sum(b_means) / 2) / stats["mean"])
    p_value = table["request_throughput_p_value"]["b"]
    assert 0.0 <= p_value <= 1.0 and table.loc["b", "request_throughput_significant"] == float(p_value < 0.05)
    assert math.isnan(table["request_throughput_p_value"]["a"])
    assert not math.isnan(table["cache_hit_rate_diff_pp"]["b"])
    assert "Speedup vs a" in (out / "report.html").read_text()


def test_sweep_points_show_mean_and_ci_over_their_repeats(tmp_path: Path) -> None:
    from sglang_test_framework.config.sweep_config import SweepConfig
    from sglang_test_framework.scenarios.sweep import run_sweep

    base = config(tmp_path / "unused", repeats=1)
    sweep = SweepConfig(base=base, grid={"max_running_requests": [4]}, repeats=2, output_dir=tmp_path / "sweep")
    result = run_sweep(sweep, plots=False)
    table = result.table
    assert len(table) == 1 and table.loc[0, "point"] == "max_running_requests=4" and table.loc[0, "repeats"] == 2
    runs = pd.read_csv(tmp_path / "sweep" / "sweep_runs.csv")
    assert list(runs["point"]) == ["max_running_requests=4,rep=0", "max_running_requests=4,rep=1"]
    assert table.loc[0, "request_throughput"] == pytest.approx(runs["request_throughput"].mean())
    assert table["request_throughput_ci95"][0] > 0 or runs["request_throughput"].nunique() == 1
    assert " ±" in result.to_text() and list(pd.read_csv(tmp_path / "sweep" / "sweep.csv")["repeats"]) == [2]


def test_repeated_routing_run(tmp_path: Path) -> None:
    from sglang_test_framework.config.routing_config import RoutingConfig
    from sglang_test_framework.scenarios.routing import RoutingTest

    cfg = RoutingConfig(
        model_path=MODEL,
        backend="sim",
        num_gpus=2,
        routing_policy="round_robin",
        router_impl="python",
        dataset_name="random",
        num_prompts=PROMPTS,
        random_input_len=64,
        random_output_len=8,
        request_rate=40.0,
        warmup_requests=1,
        progress=False,
        repeats=2,
        repeat_seed="increment",
        seed=3,
        output_dir=tmp_path / "r",
    )
    test = RoutingTest(cfg)
    results = test.run()
    assert isinstance(results, RepeatedRunResults) and results.summary["completed"] == 2 * PROMPTS
    assert [r.config["seed"] for r in results.repeats] == [3, 4]  # repeat_seed 'increment'
    assert results.per_worker is not None and sorted(results.per_worker["worker_id"]) == ["worker_0", "worker_1"]
    assert results.per_worker["requests"].sum() == PROMPTS  # the mean per worker over the repeats
    paths = test.visualize_results(results)
    assert paths and {p.parent.parent.name for p in paths} == {"rep-0", "rep-1"}  # each repeat's own plots
    for k in range(2):
        assert (tmp_path / "r" / f"rep-{k}" / "report.html").is_file()
        assert (tmp_path / "r" / f"rep-{k}" / "per_worker.csv").is_file()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "2 repeats" in page and "rep-1/report.html" in page
    assert not (tmp_path / "r" / "plots").exists()
