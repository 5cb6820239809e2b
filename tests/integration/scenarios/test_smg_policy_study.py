"""``sglang-test policy-study`` end to end: SMG policies on one seeded shared-prefix workload, behind the
real SMG, with the study's table, JSON (resilience settings included) and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglang_test_framework.cli import main

pytest.importorskip("smg")

SMALL = [
    "--num-gpus", "3", "--num-prompts", "12", "--gsp-num-groups", "3", "--gsp-prompts-per-group", "4",
    "--gsp-system-prompt-len", "256", "--gsp-question-len", "16", "--gsp-output-len", "8", "--request-rate", "40",
    "--sim-args=--sim-jitter-cv=0", "-q",
]  # fmt: skip


def test_policy_study_writes_table_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    code = main(
        ["policy-study", "--policies", "round_robin", "prefix_hash", "manual", "--output-dir", str(out), *SMALL]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "router settings (every arm)" in printed and "prefix_hash" in printed
    data = json.loads((out / "policy_study.json").read_text())
    assert data["router_settings"]["implementation"] == "smg"
    assert data["router_settings"]["retries"]["max_attempts"] == 5
    rows = {row["policy"]: row for row in data["rows"]}
    assert set(rows) == {"round_robin", "prefix_hash", "manual"}
    assert all(row["completed"] == 12 and row["failed"] == 0 for row in rows.values())
    assert all(row["attribution_mismatches"] == 0 for row in rows.values())
    assert rows["round_robin"]["load_imbalance_cv"] == 0.0  # 4/4/4
    assert rows["manual"]["routing_key"] == "group" and rows["prefix_hash"]["routing_key"] == "none"
    assert rows["prefix_hash"]["cache_hit_rate"] > rows["round_robin"]["cache_hit_rate"]
    assert (out / "plots" / "policy_study.png").stat().st_size > 0
    assert (out / "shared-prefix" / "manual" / "summary.json").is_file()
    summary = json.loads((out / "shared-prefix" / "manual" / "summary.json").read_text())
    assert summary["context"]["router_settings"]["circuit_breaker"]["failure_threshold"] == 10


def test_policy_study_refuses_a_router_without_smg_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy-study", "--router-implementation", "sglang-router", "--output-dir", str(tmp_path), *SMALL])
    assert code == 2
    assert "router.implementation" in capsys.readouterr().err
