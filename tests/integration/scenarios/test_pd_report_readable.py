"""A PD routing run as the user reads it: the TTFT stages cover the run's own requests (not the warmup),
and report.html gives stage times in ms, utilisation in % and per-worker columns with units."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sglang_test_framework.analysis.html_pages import run_report_html
from sglang_test_framework.config.router_config import RouterConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.scenarios.routing import RoutingTest
from tests.conftest import sim_run_fields

pytestmark = pytest.mark.skipif(importlib.util.find_spec("smg") is None, reason="needs smg (pip install smg)")


def test_pd_stages_leave_out_warmup_and_report_has_units(tmp_path: Path) -> None:
    config = RoutingConfig(
        **sim_run_fields(tmp_path),
        num_prefill=1,
        num_decode=1,
        routing_policy="round_robin",
        router=RouterConfig(implementation="smg"),
        dataset_name="random",
        random_input_len=200,
        random_output_len=4,
        random_range_ratio=1.0,
        num_prompts=6,
        request_rate=30.0,
        warmup_requests=2,
    )
    results = RoutingTest(config).run()
    assert results.summary["completed"] == 6
    assert results.summary["pd"]["requests"] == 6  # the 2 warmup requests are in the logs, not measured
    page = run_report_html(results, [])
    assert '<th scope="col">p50 (ms)</th>' in page and "cache_hit_rate (%)" in page
    assert 'decode utilisation (busy share, mean over workers)</th><td class="num">' in page
    assert "%</td>" in page and ">nan<" not in page.lower()
