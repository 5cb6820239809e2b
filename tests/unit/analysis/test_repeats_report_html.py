"""report.html of a repeated run and of a comparison with speedups; the routing counter-reset note."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from sglang_test_framework.analysis.compare import compare_results
from sglang_test_framework.analysis.html_pages import comparison_report_html, repeats_report_html, run_report_html
from sglang_test_framework.analysis.repeats import combine_summaries
from sglang_test_framework.results import RepeatedRunResults, RunResults

CONTEXT = {"name": "<b>run</b>", "model": "m", "backend": "sim", "request_rate": 2.0, "repeat_seed": "same"}


def rep(tmp_path: Path, k: int, throughput: float, status: str = "completed") -> RunResults:
    out = tmp_path / "run" / f"rep-{k}"
    out.mkdir(parents=True)
    report = out / "report.html"
    report.write_text("<html></html>")
    summary: dict[str, Any] = {"status": status, "completed": 4, "failed": 0, "total_requests": 4}
    summary.update(request_throughput=throughput, cache_hit_rate=0.25)
    return RunResults(
        name="run",
        kind="node",
        summary=summary,
        requests=pd.DataFrame(),
        records=[],
        context=CONTEXT,
        output_dir=out,
        files={"report": report},
    )


def test_repeated_run_page(tmp_path: Path) -> None:
    reps = [rep(tmp_path, 0, 10.0), rep(tmp_path, 1, 12.0, status="interrupted")]
    summary = combine_summaries([r.summary for r in reps])
    summary["status"] = "interrupted"
    results = RepeatedRunResults(
        name="<b>run</b>",
        kind="node",
        summary=summary,
        requests=pd.DataFrame(),
        records=[],
        context={**CONTEXT, "repeats": 2},
        output_dir=tmp_path / "run",
        repeats=reps,
    )
    page = repeats_report_html(results)
    assert "<b>run" not in page and "&lt;b&gt;run&lt;/b&gt;, 2 repeats" in page
    assert re.findall(r'<section id="([a-z]+)"', page) == ["warnings", "summary", "runs", "plots", "config", "files"]
    assert "rep-1: Run status: interrupted" in page  # each repeat's warnings, named
    assert ">11.00<" in page and ">12.71<" in page  # mean and 95% CI half-width of 10 and 12
    assert ">25.00%<" in page  # rates in percent
    assert "rep-0/report.html" in page and "rep-1/report.html" in page


def test_comparison_page_has_the_speedup_table(tmp_path: Path) -> None:
    files = []
    for label, values in (("a", [10.0, 10.2]), ("b", [20.0, 20.4])):
        for i, v in enumerate(values):
            path = tmp_path / f"{label}{i}.json"
            path.write_text(json.dumps({"tag": label, "request_throughput": v}) + "\n")
            files.append(path)
    page = comparison_report_html(compare_results(files), [])
    assert re.findall(r'<section id="([a-z]+)"', page) == ["warnings", "summary", "runs", "plots", "config"]
    assert "Speedup vs a" in page and "Welch&#x27;s t-test" in page
    assert re.search(r"x2\.00 \(p=0\.0\d\d\) \*", page)


def test_routing_page_names_workers_whose_counter_restarted(tmp_path: Path) -> None:
    results = RunResults(
        name="rr",
        kind="routing",
        summary={"num_workers": 2},
        requests=pd.DataFrame(),
        records=[],
        context={"server_counter_resets": ["worker_1"], "router_impl": "python", "routing_policy": "rr"},
    )
    page = run_report_html(results, [])
    assert "Request Counter Restarted" in page and "worker_1: server_requests_served adds up each process" in page
