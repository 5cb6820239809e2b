"""Server code coverage of a run: the simulator runs under coverage.py and the run writes an HTML and an
XML report of the code it exercised. The oracle is the sim's own source: functions and branches found by
name with ``ast``, and the lines coverage.xml marks as hit."""

from __future__ import annotations

import ast
import json
import logging
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import sglang_test_framework.sim.engine as sim_engine
import sglang_test_framework.sim.server as sim_server
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios import node as node_scenario
from sglang_test_framework.scenarios.coverage import write_coverage_report
from sglang_test_framework.scenarios.node import NodeTest
from sglang_test_framework.scenarios.routing import RoutingTest
from tests.conftest import sim_run_fields


def _node_config(out: Path, **kw: Any) -> NodeConfig:
    values: dict[str, Any] = dict(
        **sim_run_fields(out),
        port=0,
        coverage=True,
        dataset_name="random",
        random_input_len=256,
        random_output_len=16,
        random_range_ratio=1.0,
        num_prompts=8,
        request_rate=50.0,
        warmup_requests=1,
        chunked_prefill_size=128,
    )
    values.update(kw)
    return NodeConfig(**values)


def _covered_lines(xml_path: Path) -> dict[str, set[int]]:
    """File name → line numbers coverage.xml marks as hit."""
    covered: dict[str, set[int]] = {}
    for cls in ET.parse(xml_path).getroot().iter("class"):
        lines = {int(line.get("number", "0")) for line in cls.iter("line") if int(line.get("hits", "0")) > 0}
        covered[cls.get("filename", "")] = lines
    return covered


def _lines_of(source: Path, *names: str) -> dict[str, range]:
    """Line ranges of the functions called ``names`` in ``source``."""
    spans = {
        node.name: range(node.lineno, (node.end_lineno or node.lineno) + 1)
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names
    }
    assert set(spans) == set(names), f"{source} no longer defines {set(names) - set(spans)}"
    return spans


def _first_line_under_if(source: Path, function: str, test_mentions: str) -> int:
    """The first statement run when the ``if`` in ``function`` whose test mentions ``test_mentions`` holds."""
    text = source.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for branch in ast.walk(node):
                if isinstance(branch, ast.If) and test_mentions in (ast.get_source_segment(text, branch.test) or ""):
                    return branch.body[0].lineno
    raise AssertionError(f"{source}: no `if … {test_mentions} …` in {function}")


def _file(covered: dict[str, set[int]], module_file: str | None) -> set[int]:
    assert module_file is not None
    path = Path(module_file).resolve()
    matches = [lines for name, lines in covered.items() if Path(name).resolve() == path]
    assert len(matches) == 1, f"{path} not in the report: {sorted(covered)}"
    return matches[0]


def test_a_node_run_on_the_sim_reports_coverage_of_the_schedulers_prefill_and_decode_paths(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = NodeTest(_node_config(out)).run()
    assert results.summary["completed"] == 8

    xml_path, html_index = out / "coverage" / "coverage.xml", out / "coverage" / "html" / "index.html"
    assert results.files["coverage_xml"] == xml_path and results.files["coverage_html"] == html_index
    assert html_index.is_file() and "engine.py" in html_index.read_text()
    covered = _covered_lines(xml_path)
    assert covered and all("sglang_test_framework/sim/" in name for name in covered), "the default filter"

    engine_file = Path(str(sim_engine.__file__))
    engine = _file(covered, sim_engine.__file__)
    paths = _lines_of(engine_file, "_build_prefill", "_complete_prefill", "_build_decode", "_emit_token")
    for name, span in paths.items():
        assert engine & set(span), f"no covered line in SimEngine.{name}"
    # 256-token prompts in 128-token chunks: the branch continuing a chunked prefill ran too.
    assert _first_line_under_if(engine_file, "_build_prefill", "self.chunked is not None") in engine

    root = ET.parse(xml_path).getroot()
    total = results.summary["server_coverage"]
    assert total["lines_covered"] == int(root.get("lines-covered", "-1")) == sum(map(len, covered.values()))
    assert total["lines_total"] == int(root.get("lines-valid", "-1"))
    assert total["files_measured"] == len(covered)
    assert total["percent_covered"] == pytest.approx(100 * total["lines_covered"] / total["lines_total"], abs=0.01)
    assert json.loads((out / "summary.json").read_text())["server_coverage"] == total
    assert not list((out / "coverage").glob(".coverage.*")), "the per-process data files were combined"


def test_a_routing_run_combines_every_workers_data_and_include_narrows_the_report(tmp_path: Path) -> None:
    """Worker 0 rejects every request in one branch of the sim's fault code, worker 1 in another: the
    combined report covers both branches, so it holds both workers' data."""
    out = tmp_path / "out"
    cfg = RoutingConfig(
        **sim_run_fields(out),
        num_gpus=2,
        routing_policy="round_robin",
        router_impl="python",
        worker_sim_args={0: ["--sim-fail-first-n", "1000"], 1: ["--sim-fail-rate", "1"]},
        coverage=True,
        coverage_include=["*/sglang_test_framework/sim/server.py"],
        dataset_name="random",
        random_input_len=32,
        random_output_len=4,
        num_prompts=6,
        request_rate=50.0,
        warmup_requests=0,
        flush_cache_after_warmup=False,
    )
    results = RoutingTest(cfg).run()
    assert results.summary["completed"] == 0 and results.summary["failed"] == 6

    covered = _covered_lines(out / "coverage" / "coverage.xml")
    assert len(covered) == 1 and results.summary["server_coverage"]["files_measured"] == 1
    server = _file(covered, sim_server.__file__)
    server_file = Path(str(sim_server.__file__))
    assert _first_line_under_if(server_file, "fault_for_new_request", "sim_fail_first_n") in server  # worker 0
    assert _first_line_under_if(server_file, "fault_for_new_request", "sim_fail_rate") in server  # worker 1


def test_a_failed_run_still_reports_the_coverage_of_its_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom inside the run")

    monkeypatch.setattr(node_scenario, "execute_workload", boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom inside the run"):
        NodeTest(_node_config(out)).run()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["server_coverage"]["lines_covered"] > 0, "startup code ran"
    assert (out / "coverage" / "coverage.xml").is_file() and (out / "coverage" / "html" / "index.html").is_file()


def test_an_interrupted_run_still_reports_the_coverage_of_its_server(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "sglang_test_framework", "node", "--backend", "sim", "--port", "0", "--coverage"]
    argv += ["--dataset-name", "random", "--random-input-len", "64", "--random-output-len", "400"]
    argv += ["--num-prompts", "100000", "--request-rate", "20", "--output-dir", str(out), "--no-write-plots", "-q"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        jsonl = out / "requests.jsonl"
        while not (jsonl.exists() and jsonl.stat().st_size > 0):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "no record was written"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 128 + signal.SIGTERM, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["server_coverage"]["lines_covered"] > 0, output
    assert "server coverage: " in output, "the total is printed"
    assert (out / "coverage" / "html" / "index.html").is_file()


def test_no_coverage_data_is_a_warning_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert write_coverage_report(tmp_path) is None
    assert "no server coverage report" in caplog.text
    assert not (tmp_path / "coverage.xml").exists()


def test_without_coverage_the_server_runs_bare_and_the_summary_has_no_coverage_key(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = NodeTest(_node_config(out, coverage=False, num_prompts=2)).run()
    assert "server_coverage" not in results.summary
    assert not (out / "coverage").exists()
    assert "coverage_xml" not in results.files
