"""Every stress preset runs end to end on the sim from the CLI at a tiny scale and prints its verdict;
a forced failure (the sim fails the first requests) gives FAIL and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sglang_test_framework.cli import main

SCALES = {"high-concurrency": 0.03, "sustained-load": 0.03, "burst-traffic": 0.03, "mixed-workload": 0.03}


def _stress(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess (exit code and output as a user sees them)."""
    argv = [sys.executable, "-m", "sglang_test_framework", "stress", "-q", "--no-write-plots", "--port", "0"]
    argv += ["--output-dir", str(tmp_path / "out"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path)


def _stress_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``cli.main`` in this process (saves an interpreter start per preset); returns (exit code, stdout)."""
    argv = ["stress", "-q", "--no-write-plots", "--port", "0", "--output-dir", str(tmp_path / "out"), *args]
    code = main(argv)
    return code, capsys.readouterr().out


@pytest.mark.parametrize("preset", sorted(SCALES))
def test_preset_runs_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str], preset: str) -> None:
    code, stdout = _stress_in_process(tmp_path, capsys, "--preset", preset, "--scale", str(SCALES[preset]))
    assert code == 0, stdout[-2000:]
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    totals = summary.get("run_totals") or summary
    assert verdict["verdict"] == "PASS"
    assert verdict["total_requests"] == totals["total_requests"] == verdict["completed"] > 0
    assert f"STRESS {preset}: PASS" in stdout
    if preset == "mixed-workload":
        per_workload = summary["per_workload"]
        counts = {name: m["total_requests"] for name, m in per_workload.items()}
        assert sum(counts.values()) == totals["total_requests"]
        assert set(counts) == {"short-chat", "long-context", "shared-prefix"}
        assert "Per workload" in stdout
        assert "Per workload" in (tmp_path / "out" / "report.html").read_text()
    if preset == "high-concurrency":
        assert summary["max_in_flight"] > 1


def test_forced_failures_give_fail_and_exit_1(tmp_path: Path) -> None:
    proc = _stress(
        tmp_path,
        "--preset",
        "burst-traffic",
        "--num-prompts",
        "10",
        "--warmup-requests",
        "0",
        "--sim-args=--sim-fail-first-n=5",
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "STRESS burst-traffic: FAIL (success rate 50.0 % < 80.0 %: 5 of 10 completed)" in proc.stdout
    verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert (verdict["verdict"], verdict["completed"], verdict["total_requests"]) == ("FAIL", 5, 10)


def test_bad_preset_and_missing_preset_exit_2(tmp_path: Path) -> None:
    missing = _stress(tmp_path)
    assert missing.returncode == 2 and "--preset" in missing.stderr and "Traceback" not in missing.stderr
    bad = _stress(tmp_path, "--preset", "sustained-load", "--scale", "0")
    assert bad.returncode == 2 and "scale" in bad.stderr and "Traceback" not in bad.stderr


def test_preset_on_a_fleet_with_per_workload_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stress", "-q", "--no-write-plots", "--output-dir", str(tmp_path / "out"), "--preset", "mixed-workload"]
    code = main([*argv, "--scale", "0.03", "--num-gpus", "2", "--routing-policy", "round_robin"])
    stdout = capsys.readouterr().out
    assert code == 0, stdout[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_workers"] == 2
    assert sum(m["total_requests"] for m in summary["per_workload"].values()) == summary["total_requests"]
    assert "STRESS mixed-workload: PASS" in stdout and "Per workload" in stdout
    assert main([*argv, "--num-gpus", "2", "--port", "5"]) == 2  # a node-only flag on a fleet: one-line error
    assert "--port: a node-test flag" in capsys.readouterr().err
