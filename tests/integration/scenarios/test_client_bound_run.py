"""The client self-check on real runs against the simulator: a client whose event loop is blocked for
30 ms on every request (a CPU-starved client) is judged client-bound, with the reason, in summary.json,
the console report and report.html; a gentle run is not. Relations only: the machine may be loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sglang_test_framework.analysis.report import format_node_report
from sglang_test_framework.client.request_sender import RequestSender
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.records import Request, RequestRecord
from sglang_test_framework.scenarios.node import NodeTest
from tests.conftest import sim_run_fields

BLOCK_S = 0.03


def config(out: Path, rate: float, prompts: int) -> NodeConfig:
    return NodeConfig(
        **sim_run_fields(out),
        port=0,
        dataset_name="random",
        random_input_len=16,
        random_output_len=4,
        random_range_ratio=1.0,
        num_prompts=prompts,
        request_rate=rate,
        warmup_requests=1,
        collect_timeseries=False,
    )


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


@pytest.mark.timeout(120)
def test_a_starved_client_is_client_bound_and_a_gentle_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gentle = NodeTest(config(tmp_path / "gentle", rate=5.0, prompts=15))
    gentle_results = gentle.run()
    calm = _summary(tmp_path / "gentle")
    assert calm["completed"] == 15 and calm["client_bound"] is False and calm["client_bound_reason"] == ""
    check = calm["client_check"]
    assert check["arrival_lag_p99_ms"] <= check["lag_bound_ms"]
    assert check["achieved_send_rate"] >= 0.99 * check["offered_send_rate"]
    assert [p["requests"] for p in check["processes"]] == [15]  # the one-process client, measured
    assert check["processes"][0]["cpu_s"] >= 0 and check["processes"][0]["wall_s"] > 0
    assert "Client-bound: no" in format_node_report(gentle_results.summary, gentle_results.context, color=False)

    original = RequestSender.send_request

    async def starved(self: RequestSender, request: Request, *args: Any, **kwargs: Any) -> RequestRecord:
        import time

        time.sleep(BLOCK_S)  # noqa: ASYNC251 - deliberately blocks the event loop: a CPU-starved client
        return await original(self, request, *args, **kwargs)

    monkeypatch.setattr(RequestSender, "send_request", starved)
    out = tmp_path / "starved"
    starved_test = NodeTest(config(out, rate=50.0, prompts=20))  # 20 ms apart, each blocking the loop 30 ms
    results = starved_test.run()
    summary = _summary(out)
    assert summary["completed"] == 20
    assert summary["client_bound"] is True and summary["client_bound_reason"].startswith("arrival lag p99")
    block = summary["client_check"]
    assert block["arrival_lag_p99_ms"] > block["lag_bound_ms"]
    assert block["achieved_send_rate"] < block["offered_send_rate"]
    starved_test.analyze_results(results, print_report=False)  # writes report.html
    report = format_node_report(results.summary, results.context, color=False)
    assert "Client-bound: YES — arrival lag p99" in report
    assert "- Client-bound: arrival lag p99" in report  # the warning line
    html = (out / "report.html").read_text()
    assert 'data-kind="client_bound"' in html and 'class="alert"' in html
