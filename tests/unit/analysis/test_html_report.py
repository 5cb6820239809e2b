"""report.html pages: self-contained, escaped, with the console report's numbers, warnings and config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from sglang_test_framework.analysis.compare import compare_results
from sglang_test_framework.analysis.html_pages import (
    comparison_report_html,
    policy_comparison_html,
    run_report_html,
    sweep_report_html,
    write_run_report,
)
from sglang_test_framework.analysis.html_report import CONTENT_SECURITY_POLICY, config_block, figures_block
from sglang_test_framework.analysis.report import format_node_report
from sglang_test_framework.analysis.run_warnings import WARNING_CHECKS, RunWarning, run_warnings
from sglang_test_framework.results import RunResults

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
EVIL = '<script>alert("x")</script>'
SUMMARY: dict[str, Any] = {
    "status": "interrupted",
    "total_requests": 11,
    "completed": 9,
    "failed": 2,
    "success_rate": 9 / 11,
    "duration_s": 2.5,
    "request_throughput": 3.6,
    "output_throughput": 1234.5,
    "peak_output_throughput": 2060.0,
    "p99_server_latency": 612.84,
    "errors_by_type": {"http": 1, "timeout": 1},
    "first_errors": [f"r3: HTTP 500 {EVIL}"],
    "server_exits": [{"name": "server_0", "exit_code": -9, "log_tail": f"Killed {EVIL}"}],
}
CONTEXT = {"name": EVIL, "model": "m<1>", "backend": "sim", "max_running_requests": 8, "request_rate": 2.0}


def node_results(tmp_path: Path) -> RunResults:
    return RunResults(
        name=EVIL,
        kind="node",
        summary=SUMMARY,
        requests=pd.DataFrame(),
        records=[],
        config={"model_path": "m", "api_key": "sk-secret", "router": {"admin_api_key": "abc"}},
        context=CONTEXT,
        output_dir=tmp_path,
        files={"json": tmp_path / "summary.json"},
    )


def png(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(PNG_1X1)
    return path


def test_run_page_is_self_contained_escaped_and_has_the_report_numbers(tmp_path: Path) -> None:
    page = run_report_html(node_results(tmp_path), [png(tmp_path, "a.png"), png(tmp_path, "b.png")])
    assert "<script" not in page and "alert(&quot;x&quot;)" in page
    assert f'content="{CONTENT_SECURITY_POLICY}"'.replace("'", "&#x27;") in page
    assert re.findall(r'<section id="([a-z]+)"', page) == ["warnings", "summary", "plots", "config", "files"]
    assert page.count('<img src="data:image/png;base64,') == 2
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing loaded from elsewhere
    console = format_node_report(SUMMARY, CONTEXT)
    for label, value in (("Output Token Throughput", "1,234 tok/s"), ("Peak Output Throughput", "2,060 tok/s")):
        assert f"- {label}: {value}" in console
        assert f'<th scope="row">{label}</th><td class="num">{value}</td>' in page
    assert "sk-secret" not in page and "abc" not in page and page.count("api_key: &#x27;***&#x27;") == 2
    assert "server_0 exited during the run with code -9" in page
    assert "2 of 11 requests failed (http: 1, timeout: 1)" in page
    assert "Run status: interrupted" in page


def test_written_next_to_the_results(tmp_path: Path) -> None:
    path = write_run_report(node_results(tmp_path), [])
    assert path == tmp_path / "report.html"
    assert "No figures" in path.read_text(encoding="utf-8")
    assert (
        write_run_report(RunResults(name="x", kind="node", summary={}, requests=pd.DataFrame(), records=[]), []) is None
    )


def test_warnings_each_kind_and_none() -> None:
    kinds = [w.kind for w in run_warnings({**SUMMARY, "scrape_errors": 3}, {})]
    assert kinds == ["status", "server_exit", "failed_requests", "scrape_errors"]
    assert run_warnings({"status": "completed", "failed": 0, "server_exits": []}, {}) == []
    injected = run_warnings({"failed": 1, "total_requests": 4}, {"failure_events": [{"event": "killed"}]})
    assert "failures were expected" in injected[0].message
    custom = run_warnings({}, {}, checks=[*WARNING_CHECKS, lambda s, c: [RunWarning("client_bound", "late")]])
    assert [w.kind for w in custom] == ["client_bound"]


def test_figures_and_config_blocks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    html = figures_block([png(tmp_path, "ok.png"), bad, tmp_path / "missing.png"])
    assert html.count("<img") == 1 and html.count("could not be read") == 2
    assert 'width="1" height="1"' in html
    assert "No config recorded" in config_block({})
    assert "&lt;b&gt;" in config_block({"name": "<b>"})


def test_comparison_sweep_and_policy_pages(tmp_path: Path) -> None:
    files = []
    for i, status in enumerate(("completed", "failed")):
        path = tmp_path / f"run{i}.json"
        data = {
            "request_throughput": 1.0 + i,
            "status": status,
            "failed": i,
            "context": {"model": "m", "request_rate": i},
        }
        path.write_text(json.dumps(data) + "\n")
        files.append(path)
    result = compare_results(files)
    page = comparison_report_html(result, [png(tmp_path, "comparison.png")])
    assert re.findall(r'<section id="([a-z]+)"', page) == ["warnings", "summary", "runs", "plots", "config"]
    assert "run1 (run1.json): Run status: failed" in page and "Varies" in page
    assert "2.00 (x2.00)" in page  # the console table's cell
    sweep = sweep_report_html(
        pd.DataFrame({"point": ["a", "b"], "request_rate": [1.0, 2.0]}),
        {"a": {**SUMMARY, "context": CONTEXT}},
        {"b": "server did not start"},
        [],
        {"grid": {"request_rate": [1.0, 2.0]}},
    )
    assert "b: did not run (server did not start)" in sweep and "a: Run status: interrupted" in sweep
    assert "<script" not in sweep
    arm = node_results(tmp_path)
    arm.per_worker = pd.DataFrame({"worker_id": ["worker_0"], "requests": [3]})
    policy = policy_comparison_html(
        pd.DataFrame({"completed": [9]}, index=pd.Index([EVIL], name="policy")), {EVIL: arm}, [], {"api_key": "k"}
    )
    assert "<script" not in policy and "api_key: &#x27;***&#x27;" in policy
    assert re.findall(r'<section id="([a-z]+)"', policy) == ["warnings", "summary", "workers", "plots", "config"]
