"""PD RoutingTest: 2 prefill + 2 decode simulated workers behind the real SMG in --pd-disaggregation mode,
checked against the simulators' ground-truth logs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.analysis.html_pages import run_report_html
from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios.routing import RoutingTest
from tests.conftest import sim_run_fields

pytestmark = pytest.mark.skipif(importlib.util.find_spec("smg") is None, reason="needs smg (pip install smg)")


def _config(tmp_path: Path, **kw: Any) -> RoutingConfig:
    values: dict[str, Any] = dict(
        **sim_run_fields(tmp_path),
        num_prefill=2,
        num_decode=2,
        routing_policy="round_robin",
        router=RouterConfig(implementation="smg"),
        dataset_name="random",
        random_input_len=400,
        random_output_len=12,
        random_range_ratio=1.0,
        num_prompts=24,
        request_rate=30.0,
        prefill_args=["--sim-kv-link-gbps", "50"],  # a slow link, so the transfer is a visible stage
        sim_args=["--sim-jitter-cv", "0"],
        warmup_requests=0,
    )
    values.update(kw)
    return RoutingConfig(**values)


def _truth(tmp_path: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(tmp_path.glob("sim_ground_truth.worker_*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def test_pd_routing_prefills_on_prefill_and_decodes_on_decode(tmp_path: Path) -> None:
    results = RoutingTest(_config(tmp_path)).run()
    s = results.summary
    assert s["completed"] == 24 and s["failed"] == 0
    truth = _truth(tmp_path)
    prefill = {r["rid"]: r for r in truth if r["role"] == "prefill"}
    decode = {r["rid"]: r for r in truth if r["role"] == "decode"}
    assert len(prefill) == len(decode) == 24
    for rec in results.records:
        p, d = prefill[rec.request_id], decode[rec.request_id]
        assert p["worker_id"] in {"prefill_0", "prefill_1"} and d["worker_id"] in {"decode_0", "decode_1"}
        assert p["bootstrap_room"] == d["bootstrap_room"] and d["prefill_worker_id"] == p["worker_id"]
        assert p["completion_tokens"] == 1 and p["prompt_tokens"] == d["prompt_tokens"] == 400
        assert rec.output_tokens == d["completion_tokens"] == rec.expected_output_len == 12
        assert rec.worker_id == d["worker_id"]
        # the decode ran no prefill forward; it began decoding only once the KV had arrived
        assert d["prefill_chunks"] == [] and d["admitted_ns"] >= d["transfer_end_ns"]
        prefill_ns = p["first_token_step_end_ns"] - p["admitted_ns"]
        transfer_ns = round(d["kv_transfer_modelled_s"] * 1e9)
        assert d["transfer_end_ns"] - d["transfer_start_ns"] >= transfer_ns - 1
        assert rec.first_token_ns is not None
        assert rec.first_token_ns - rec.send_ns >= prefill_ns + transfer_ns
    assert s["load_imbalance"] == 1.0  # round_robin on each leg: 12 requests per decode worker
    pd_summary = s["pd"]
    assert pd_summary["requests"] == 24 and pd_summary["load_imbalance"] == {"prefill": 1.0, "decode": 1.0}
    assert pd_summary["transfer_ms"]["p50"] >= pd_summary["transfer_modelled_ms"]["p50"] - 0.001
    util = pd_summary["utilisation"]
    assert util["prefill"] > 0 and util["decode"] > 0 and len(util["workers"]) == 4
    assert results.context["pd"]["num_prefill"] == 2
    assert results.files["pd_breakdown"].exists()
    page = run_report_html(results, [])
    assert "Prefill/decode disaggregation" in page and "KV transfer on an idle link" in page


def test_killing_a_decode_worker_loses_no_record(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        num_prompts=40,
        request_rate=20.0,
        random_output_len=60,
        failure_schedule={0.8: [2]},  # worker 2 = decode_0
    )
    results = RoutingTest(cfg).run()
    s = results.summary
    assert len(results.records) == 40 and s["completed"] + s["failed"] == 40
    assert [(e["event"], e["worker_id"]) for e in results.context["failure_events"]] == [("killed", "decode_0")]
    failed = results.requests[~results.requests["success"]]
    assert failed["error"].notna().all() and (failed["error"].astype(str).str.len() > 0).all()
    ok = {r.request_id for r in results.records if r.success}
    decode_ok = {r["rid"] for r in _truth(tmp_path) if r["role"] == "decode" and r["status"] == "ok"}
    assert ok <= decode_ok | {r.request_id for r in results.records if r.worker_id == "decode_0" and r.success}


def test_pd_compare_cli_prints_both_sides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        [
            "pd-compare",
            "-q",
            "--num-prefill",
            "1",
            "--num-decode",
            "1",
            "--routing-policy",
            "round_robin",
            "--dataset-name",
            "random",
            "--random-input-len",
            "300",
            "--random-output-len",
            "8",
            "--num-prompts",
            "12",
            "--request-rate",
            "20",
            "--warmup-requests",
            "0",
            "--no-write-plots",
            "--prefill-args=--sim-kv-link-gbps=100",
            "--output-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("arm"))
    assert header.split() == ["arm", "pd", "colocated"]
    completed = next(line for line in out.splitlines() if line.startswith("completed"))
    assert [float(v) for v in completed.split()[1:]] == [12.0, 12.0]
    assert "PD TTFT stages" in out and "transfer" in out
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["gpus"] == 2 and set(data["arms"]) == {"pd", "colocated"}
    assert data["arms"]["pd"]["completed"] == data["arms"]["colocated"]["completed"] == 12
    assert (tmp_path / "pd" / "pd_breakdown.csv").exists() and (tmp_path / "comparison.csv").exists()
