"""What a user sees for a 32-worker fleet and the new scenarios: routing plots stay readable (no layout
warning, no 32-entry legend, natural worker order, idle workers not drawn as 0 % hit rate), the policy
study figure carries values and settings, and console tables carry units and never print ``nan``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sglang_test_framework.analysis import plots
from sglang_test_framework.analysis.html_pages import run_report_html
from sglang_test_framework.analysis.metric_text import (
    column_label,
    metric_rows_text,
    routing_summary_lines,
    side_by_side_text,
)
from sglang_test_framework.analysis.plot_data import fleet_band
from sglang_test_framework.analysis.plots import plot_node_results
from sglang_test_framework.analysis.policy_study_plots import plot_policy_study
from sglang_test_framework.analysis.routing_plots import (
    plot_latency_by_arm,
    plot_policy_comparison,
    plot_routing_results,
)
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.per_worker import per_worker_table
from sglang_test_framework.results import RunResults
from tests.conftest import streamed_record

MS = 1_000_000
T0 = 5_000_000_000_000
WORKERS = 32
CONTEXT = {"model": "m", "backend": "sim", "routing_policy": "cache_aware", "num_workers": WORKERS}


def fleet_results(workers: int = WORKERS, idle: int = 4) -> RunResults:
    """``workers`` workers; the last ``idle`` get no request; every busy one 3 requests."""
    collector = MetricsCollector()
    busy = workers - idle
    for i in range(3 * busy):
        send = T0 + i * 10 * MS
        chunks = [send + (20 + i % 7 + 10 * k) * MS for k in range(3)]
        collector.add_record(
            streamed_record(f"r{i}", send, chunks, prompt_len=100, cached_tokens=50, worker_id=f"worker_{i % busy}")
        )
    targets = [f"worker_{w}" for w in range(workers)]
    rows = [
        {"t_s": float(t), "target": target, "metric": metric, "labels": "", "value": float((t + w) % 3)}
        for t in range(4)
        for w, target in enumerate(targets)
        for metric in ("sglang:num_running_reqs", "sglang:num_queue_reqs")
    ]
    df = collector.to_dataframe()
    start_s = float(df["send_s"].min())
    timeseries = pd.DataFrame(rows).assign(t_s=lambda f: f["t_s"] + start_s)
    return RunResults(
        name="fleet",
        kind="routing",
        summary=collector.get_metrics(),
        requests=df,
        records=list(collector.records),
        timeseries=timeseries,
        context=CONTEXT,
        per_worker=per_worker_table(df, targets),
    )


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def test_32_worker_routing_plots_draw_without_layout_warnings(tmp_path: Path, saved: list[Figure]) -> None:
    results = fleet_results()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "constrained_layout not applied" with a 32-entry legend
        paths = plot_routing_results(results, tmp_path)
        paths += plot_policy_comparison({"cache_aware": results, "round_robin": fleet_results(idle=0)}, tmp_path)
    assert [p.name for p in paths] == [
        "worker_distribution.png",
        "latency_cdf.png",
        "queue_depth.png",
        "policy_latency_cdf.png",
        "policy_distribution.png",
    ]
    for fig in saved:
        for ax in fig.axes:
            legend = ax.get_legend()
            assert legend is None or len(legend.get_texts()) <= 6, fig.get_suptitle()


def test_32_workers_in_natural_order_and_idle_workers_unlabelled(tmp_path: Path, saved: list[Figure]) -> None:
    plot_routing_results(fleet_results(), tmp_path)
    distribution, cdf, queue = saved
    ticks = [t.get_text() for t in distribution.axes[0].get_xticklabels()]
    assert ticks == [str(w) for w in range(WORKERS)]
    assert distribution.axes[0].get_xlabel() == "worker (worker_<n>)"
    hit_bars = [float(p.get_height()) for p in distribution.axes[1].patches if isinstance(p, Rectangle)]
    assert hit_bars[-4:] == [0.0] * 4 and all(h == pytest.approx(0.5) for h in hit_bars[:-4])
    assert not any("%" in t.get_text() for t in distribution.axes[1].texts)  # 32 value labels would overlap
    labels = legend_texts(cdf.axes[0])
    assert labels[0] == f"each of the {WORKERS - 4} workers with completed requests"
    assert any(label.startswith("slowest worker by P99: worker_") for label in labels)
    assert labels[-1].startswith("all workers")
    worker_axis = [t.get_text() for t in queue.axes[0].get_yticklabels()]
    assert worker_axis == [str(w) for w in range(WORKERS)]


def test_few_workers_keep_lines_and_value_labels(tmp_path: Path, saved: list[Figure]) -> None:
    plot_routing_results(fleet_results(workers=3, idle=1), tmp_path)
    distribution, cdf, queue = saved
    assert [t.get_text() for t in distribution.axes[1].texts] == ["50.0%", "50.0%", "n/a"]
    assert [label.split(" ")[0] for label in legend_texts(cdf.axes[0])] == ["worker_0", "worker_1", "all"]
    assert len(queue.axes[0].get_lines()) == 3


def test_policy_study_figure_has_values_units_and_settings(tmp_path: Path) -> None:
    index = pd.MultiIndex.from_product([["shared-prefix"], ["round_robin", "manual"]], names=["workload", "policy"])
    table = pd.DataFrame(
        {
            "cache_hit_rate": [0.5, 0.75],
            "p50_ttft": [10.0, np.nan],
            "p99_ttft": [20.0, 30.0],
            "request_throughput": [5.0, 5.0],
            "load_imbalance_cv": [0.0, 1.2],
            "routing_key": ["none", "group"],
        },
        index=index,
    )
    figures: list[Figure] = []

    def keep(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return plots.save_figure(fig, path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sglang_test_framework.analysis.policy_study_plots.save_figure", keep)
        plot_policy_study(table, tmp_path / "p.png", "Model: m   Workers: 3")
    (fig,) = figures
    assert "Model: m" in fig.get_suptitle()
    hit, p50 = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in hit.texts] == ["50%", "75%"]
    assert [t.get_text() for t in p50.texts] == ["10.0", "n/a"]
    assert p50.get_ylabel() == "TTFT (ms)"
    assert [t.get_text() for t in hit.get_xticklabels()] == ["round_robin", "manual\n(key: group)"]


def test_console_tables_have_units_and_no_nan() -> None:
    results = fleet_results(workers=3, idle=1)
    assert results.per_worker is not None
    text = metric_rows_text(results.per_worker)
    assert "nan" not in text.lower() and "n/a" in text and "cache_hit_rate (%)" in text
    assert text.splitlines()[2].split()[:3] == ["worker_0", "3", "0"]  # counts as integers
    lines = routing_summary_lines({"request_throughput": 12.345, "cache_hit_rate": 0.5, "failed": 0})
    assert lines == ["request throughput: 12.35 req/s", "cache hit rate (Σ cached / Σ prompt tokens): 50.0%",
                     "failed requests: 0"]  # fmt: skip
    arms = pd.DataFrame({"completed": [40.0, 40.0], "p99_ttft": [57.764, np.nan]}, index=["pd", "colocated"])
    side = side_by_side_text(arms).splitlines()
    assert side[1].split() == ["completed", "40", "40"]
    assert side[2].split() == ["p99_ttft", "(ms)", "57.76", "n/a"]
    assert column_label("load_imbalance_cv") == "load_imbalance_cv (std/mean)"
    assert column_label("p50_ttft_ms") == "p50_ttft_ms"


def test_stress_verdict_heads_the_report() -> None:
    results = fleet_results(workers=2, idle=0)
    results.summary["stress_verdict"] = {
        "preset": "burst-traffic",
        "verdict": "FAIL",
        "success_rate": 0.5,
        "completed": 5,
        "total_requests": 10,
        "min_success_rate": 0.8,
        "problems": [],
    }
    page = run_report_html(results, [])
    verdict = page.index('id="verdict"')
    assert verdict < page.index('id="warnings"')
    block = page[verdict : page.index('id="warnings"')]
    assert 'class="alert"' in block and "50.0%" in block and "≥ 80.0%" in block and "5 of 10 requests" in block
    del results.summary["stress_verdict"]
    assert 'id="verdict"' not in run_report_html(results, [])


def test_node_server_panels_for_32_servers_show_mean_and_band(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures: list[Figure] = []
    original = plots.save_figure

    def keep(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 64 legend entries made constrained_layout give up
        paths = plot_node_results(fleet_results(idle=0), tmp_path)
    assert paths[-1].name == "server_timeseries.png"
    legend_axes = [ax for ax in figures[-1].axes if ax.get_legend() is not None]
    assert legend_texts(legend_axes[0]) == [
        "num_running_reqs: mean of 32 servers",
        "num_running_reqs: min–max across servers",
        "num_queue_reqs: mean of 32 servers",
        "num_queue_reqs: min–max across servers",
    ]


def test_fleet_band_holds_each_gauge_until_its_next_sample() -> None:
    server = pd.DataFrame(
        {
            "t_s": [0.0, 2.0, 1.0],
            "target": ["a", "a", "b"],
            "metric": ["g", "g", "g"],
            "value": [1.0, 3.0, 5.0],
        }
    )
    band = fleet_band(server, "g", points=3)  # grid 0, 1, 2
    assert band["servers"].tolist() == [1, 2, 2]
    assert band["mean"].tolist() == [1.0, 3.0, 4.0]
    assert band["min"].tolist() == [1.0, 1.0, 3.0] and band["max"].tolist() == [1.0, 5.0, 5.0]
    assert fleet_band(server, "other").empty


def test_pd_vs_colocated_latency_figure(tmp_path: Path, saved: list[Figure]) -> None:
    arms = {"pd": fleet_results(workers=2, idle=0), "colocated": fleet_results(workers=2, idle=0)}
    path = plot_latency_by_arm(arms, tmp_path / "pd.png", "arm", "PD vs co-located on 2 GPUs: latency CDFs")
    assert path.is_file()
    (fig,) = saved
    assert fig.get_suptitle().startswith("PD vs co-located on 2 GPUs: latency CDFs\nModel: m")
    assert [label.split(" ")[0] for label in legend_texts(fig.axes[1])] == ["pd", "colocated"]
