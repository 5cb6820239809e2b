"""Sweeps (CLI, resumable), comparisons, server time series — against the simulator (the SLO search:
test_saturation.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.scenarios.node import NodeTest

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
SMALL = [
    "--dataset-name",
    "random",
    "--num-prompts",
    "12",
    "--random-input-len",
    "64",
    "--random-output-len",
    "8",
    "--request-rate",
    "40",
    "--port",
    "0",
    "-q",
    "--no-write-plots",
]


def test_spec_sweep_script_and_compare(tmp_path: Path, monkeypatch: Any) -> None:
    """The spec's loop over max_running_requests (one output file each), then the compare command."""
    monkeypatch.chdir(tmp_path)
    files = []
    for mrs in (32, 64, 128, 256, 512):
        out = tmp_path / f"results_mrs_{mrs}.json"
        code = cli_main(
            [
                "node",
                "--max-running-requests",
                str(mrs),
                "--output-file",
                str(out),
                "--output-dir",
                str(tmp_path / f"run_{mrs}"),
                *SMALL,
            ]
        )
        assert code == 0
        files.append(out)
        assert len(pd.read_json(out, lines=True)) == 1  # the spec's compare script reads it with lines=True
    code = cli_main(["compare", *map(str, files), "--output-dir", str(tmp_path / "cmp")])
    assert code == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv", index_col=0)
    assert len(table) == 5 and table["request_throughput_ratio"].iloc[0] == 1.0
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000


def test_sweep_resumes_after_being_killed(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    argv = [
        sys.executable,
        "-m",
        "sglang_test_framework",
        "sweep",
        "--grid",
        "max_running_requests=4,8,16",
        "--sweep-dir",
        str(sweep_dir),
        *SMALL,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    points = sweep_dir / "points"
    try:
        while proc.poll() is None and len(list(points.glob("*.json"))) < 1:
            import time

            time.sleep(0.2)
        proc.kill()  # killed mid-sweep: at least one point finished, the rest did not
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = {p.name: p.stat().st_mtime_ns for p in points.glob("*.json")}
    assert 1 <= len(done_before) < 3
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"skipped {len(done_before)} finished" in out.stdout
    for name, mtime in done_before.items():
        assert (points / name).stat().st_mtime_ns == mtime  # not redone
    table = pd.read_csv(sweep_dir / "sweep.csv")
    assert sorted(table["max_running_requests"]) == [4, 8, 16]
    assert list((sweep_dir / "plots").glob("*.png"))


def test_timeseries_shows_queue_rising_when_rate_exceeds_capacity(tmp_path: Path) -> None:
    cfg = NodeConfig(
        model_path=MODEL,
        backend="sim",
        port=0,
        dataset_name="random",
        random_input_len=200,
        random_output_len=60,
        random_range_ratio=1.0,
        num_prompts=80,
        request_rate=40.0,
        max_running_requests=4,
        timeseries_interval_s=0.2,
        output_dir=tmp_path,
        progress=False,
    )
    test = NodeTest(cfg)
    results = test.run()
    ts = results.timeseries
    queued = ts[ts["metric"] == "sglang:num_queue_reqs"].sort_values("t_s")["value"].to_numpy()
    assert queued.max() >= 20
    peak = int(queued.argmax())
    assert queued[: peak + 1].max() > queued[: max(1, peak // 3) + 1].max()  # it rose during the run
    paths = [p for p in results.output_dir.glob("**/*.png")] if results.output_dir else []
    test.analyze_results(results, print_report=False)
    assert (tmp_path / "plots" / "server_timeseries.png").exists() or paths


def _sweep(sweep_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "sglang_test_framework", "sweep", "--sweep-dir", str(sweep_dir), *SMALL, *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_a_sweep_rerun_with_a_changed_config_recomputes_or_refuses_and_never_reuses(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    first = _sweep(sweep_dir, "--grid", "max_running_requests=4,8")
    assert first.returncode == 0, first.stderr
    assert "ran 2, skipped 0" in first.stdout
    same = _sweep(sweep_dir, "--grid", "max_running_requests=4,8")
    assert "ran 0, skipped 2" in same.stdout, same.stdout + same.stderr
    refused = _sweep(sweep_dir, "--grid", "max_running_requests=4,8", "--num-prompts", "6", "--resume")
    assert refused.returncode == 2
    assert "num_prompts: 12 → 6" in refused.stderr
    assert len(pd.read_csv(sweep_dir / "sweep.csv")) == 2, "a refused resume leaves the sweep as it was"
    changed = _sweep(sweep_dir, "--grid", "max_running_requests=4,8", "--num-prompts", "6")
    assert changed.returncode == 0, changed.stderr
    assert "ran 2, skipped 0" in changed.stdout, "a changed config is never served from the old points"
    table = pd.read_csv(sweep_dir / "sweep.csv")
    assert list(table["completed"]) == [6, 6]
    earlier = [p for p in tmp_path.iterdir() if p.name.startswith("sweep.")]
    assert len(earlier) == 1, "the earlier sweep was moved aside, not overwritten"
    assert list(pd.read_csv(earlier[0] / "sweep.csv")["completed"]) == [12, 12]


def test_a_bad_grid_key_fails_before_anything_runs_and_leaves_results_untouched(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.csv").write_text("earlier,results\n1,2\n")
    for bad in ("max_running_request=32,64", "page-sise=1,64"):
        out = _sweep(sweep_dir, "--grid", bad)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: --grid"), out.stderr
        assert "did you mean" in out.stderr
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["sweep.csv"]
    assert (sweep_dir / "sweep.csv").read_text() == "earlier,results\n1,2\n"


def test_a_failing_sweep_point_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    out = _sweep(sweep_dir, "--grid=--sim-crash-after-s=0.01,1000", "--startup-timeout-s", "60")
    assert out.returncode == 1, out.stdout + out.stderr
    table = pd.read_csv(sweep_dir / "sweep.csv")
    assert sorted(table["status"]) == ["completed", "failed"]
    failed = table[table["status"] == "failed"].iloc[0]
    assert str(failed["error"]).strip() not in ("", "nan")
    assert len(list((sweep_dir / "points").glob("*.failed.json"))) == 1
