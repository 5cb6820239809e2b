"""report.html of a node run, a routing comparison, a sweep and ``sglang-test compare``, opened in a real
headless Chromium: the page renders with its sections and embedded figures and logs nothing to the
console. The node run also checks that the plotted data agrees with the report's numbers."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from sglang_test_framework.analysis.plot_data import LAST_BATCH_GAUGES, node_plot_data
from sglang_test_framework.cli import main as cli_main
from sglang_test_framework.config.node_config import NodeConfig
from sglang_test_framework.config.routing_config import RoutingConfig
from sglang_test_framework.config.sweep_config import SweepConfig
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.results import RunResults
from sglang_test_framework.scenarios.node import NodeTest
from sglang_test_framework.scenarios.routing import RoutingTest
from sglang_test_framework.scenarios.sweep import run_sweep

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught")
RUN_SECTIONS = {"warnings", "summary", "plots", "config"}


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


requires_chromium = pytest.mark.skipif(
    _chromium() is None,
    reason="no chromium binary on PATH (install it: apt-get install -y chromium); CI installs it",
)


class _DOM(HTMLParser):
    """What the rendered DOM holds: section ids, <img> sources, scripts, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: set[str] = set()
        self.images: list[str] = []
        self.svgs = 0
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("id"):
            self.sections.add(str(values["id"]))
        if tag == "img":
            self.images.append(str(values.get("src") or ""))
        self.svgs += tag == "svg"
        self.scripts += tag == "script"
        for key in ("src", "href"):
            ref = values.get(key)
            if ref and not ref.startswith(("data:", "#")):
                self.external.append(ref)


@dataclass
class Rendered:
    dom: _DOM
    console: list[str]
    screenshot: Path


def render(page: Path, out_dir: Path) -> Rendered:
    """Open ``page`` in headless Chromium twice: once dumping the DOM, once taking a screenshot; both
    with the browser log on stderr, whose console lines are returned."""
    binary = _chromium()
    assert binary is not None
    base = [
        binary,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={out_dir / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = out_dir / f"{page.parent.name}-report.png"
    dump = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert dump.returncode == 0, dump.stderr[-2000:]
    snap = subprocess.run(
        [*base, "--window-size=1400,2600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert snap.returncode == 0, snap.stderr[-2000:]
    dom = _DOM()
    dom.feed(dump.stdout)
    console = [line for line in (dump.stderr + snap.stderr).splitlines() if CONSOLE_LINE.search(line)]
    return Rendered(dom, console, shot)


def assert_renders(page: Path, out_dir: Path, sections: set[str], figures: int) -> Rendered:
    """The page renders with ``sections``, exactly ``figures`` embedded PNGs that decode, no script, no
    external reference, no console message, and a non-empty screenshot."""
    assert page.is_file()
    rendered = render(page, out_dir)
    dom = rendered.dom
    assert sections <= dom.sections, dom.sections
    assert len(dom.images) + dom.svgs == figures
    for src in dom.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :], validate=True).startswith(PNG_MAGIC)
    assert dom.scripts == 0 and dom.external == []
    assert rendered.console == []
    assert rendered.screenshot.read_bytes().startswith(PNG_MAGIC)
    return rendered


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunResults]:
    out = tmp_path_factory.mktemp("node")
    cfg = NodeConfig(
        model_path=MODEL,
        backend="sim",
        port=0,
        dataset_name="generated-shared-prefix",
        gsp_num_groups=3,
        gsp_prompts_per_group=10,
        gsp_system_prompt_len=256,
        gsp_question_len=16,
        gsp_output_len=24,
        request_rate=30.0,
        max_running_requests=8,
        timeseries_interval_s=0.2,
        warmup_requests=2,
        output_dir=out,
        progress=False,
    )
    test = NodeTest(cfg)
    results = test.run()
    test.analyze_results(results, print_report=False)
    yield results


def test_node_plot_data_agrees_with_the_report(node_run: RunResults) -> None:
    summary = node_run.summary
    assert summary["completed"] == 30
    data = node_plot_data(node_run.records, node_run.requests, node_run.timeseries)
    assert data.output_throughput["output_tokens_per_s"].max() == summary["peak_output_throughput"]
    assert data.output_throughput["output_tokens_per_s"].sum() == summary["total_output_tokens"]
    for metric in ("server_latency", "ttft", "tpot"):
        values = data.latency.loc[data.latency["metric"] == metric, "value_ms"].to_numpy(dtype=float)
        assert d.stats(values)["p99"] == summary[f"p99_{metric}"]
    itl = data.latency.loc[data.latency["metric"] == "itl", "value_ms"].to_numpy(dtype=float)
    assert data.itl_stride == 1 and d.stats(itl)["p99"] == pytest.approx(summary["p99_itl"], rel=1e-9)
    assert data.cache_hit_rate["cache_hit_rate"].iloc[-1] == summary["cache_hit_rate"]
    assert int(data.finished["completed"].sum()) == summary["completed"]
    server = data.server
    assert not server.empty and (server["t_s"] >= 0).all()
    first_token_s = float(np.nanmin(data.requests["send_t_s"] + data.requests["ttft_ms"] / 1e3))
    gauges = server[server["metric"].isin(LAST_BATCH_GAUGES)]
    assert (gauges["t_s"] >= first_token_s - 1e-6).all()  # no warmup batch's values
    assert {p.name for p in (node_run.output_dir or Path()).glob("plots/*.png")} == {
        "latency_distributions.png",
        "latency_over_time.png",
        "throughput_over_time.png",
        "server_timeseries.png",
    }


@requires_chromium
def test_node_report_renders(node_run: RunResults, tmp_path: Path) -> None:
    page = node_run.files["report"]
    assert node_run.output_dir is not None and page == node_run.output_dir / "report.html"
    assert_renders(page, tmp_path, RUN_SECTIONS | {"files"}, figures=4)
    peak = float(node_run.summary["peak_output_throughput"])
    assert f"{peak:,.0f} tok/s" in page.read_text(encoding="utf-8")  # the console report's figure and format


def _routing_config(tmp_path: Path) -> RoutingConfig:
    return RoutingConfig(
        model_path=MODEL,
        backend="sim",
        num_gpus=2,
        routing_policy="round_robin",
        router_impl="python",
        dataset_name="random",
        num_prompts=12,
        random_input_len=64,
        random_output_len=8,
        request_rate=30.0,
        timeseries_interval_s=0.2,
        warmup_requests=1,
        output_dir=tmp_path / "routing",
        progress=False,
    )


@requires_chromium
def test_routing_comparison_and_run_reports_render(tmp_path: Path) -> None:
    comparison = RoutingTest.compare(_routing_config(tmp_path), ["round_robin", "random"])
    page = comparison.files["report"]
    assert page == tmp_path / "routing" / "report.html"
    assert_renders(page, tmp_path, RUN_SECTIONS | {"workers"}, figures=2)
    arm = comparison.results["round_robin"]
    paths = RoutingTest(_routing_config(tmp_path)).visualize_results(arm)
    assert [p.name for p in paths] == ["worker_distribution.png", "latency_cdf.png", "queue_depth.png"]
    assert_renders(arm.files["report"], tmp_path, RUN_SECTIONS | {"workers"}, figures=3)


@requires_chromium
def test_sweep_and_compare_reports_render(tmp_path: Path) -> None:
    base = NodeConfig(
        model_path=MODEL,
        backend="sim",
        port=0,
        dataset_name="random",
        num_prompts=8,
        random_input_len=64,
        random_output_len=8,
        warmup_requests=1,
        progress=False,
    )
    sweep = run_sweep(SweepConfig(base=base, grid={"request_rate": [10.0, 20.0]}, output_dir=tmp_path / "sweep"))
    assert len(sweep.table) == 2 and not sweep.failed
    assert_renders(sweep.files["report"], tmp_path, RUN_SECTIONS, figures=2)
    files = sorted(str(p) for p in (tmp_path / "sweep" / "runs").glob("*/summary.json"))
    assert len(files) == 2
    assert cli_main(["compare", *files, "--labels", "r10", "r20", "--output-dir", str(tmp_path / "cmp")]) == 0
    assert_renders(tmp_path / "cmp" / "report.html", tmp_path, RUN_SECTIONS | {"runs"}, figures=1)
