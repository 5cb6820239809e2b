"""Plots write non-empty PNGs with a title block and labelled axes, for node, routing, sweep and
comparison figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sglang_test_framework.analysis.compare_plots import plot_comparison
from sglang_test_framework.analysis.plots import plot_node_results
from sglang_test_framework.analysis.routing_plots import plot_policy_comparison, plot_routing_results
from sglang_test_framework.analysis.sweep_plots import plot_sweep
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.per_worker import per_worker_table
from sglang_test_framework.results import RunResults
from tests.conftest import streamed_record

MS = 1_000_000
T0 = 3_000_000_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONTEXT = {
    "model": "m",
    "backend": "sim",
    "sim_profile": "Llama-3-8B@H100-SXM",
    "request_rate": 10.0,
    "max_running_requests": 64,
}


def run_results(timeseries: bool = True, workers: int = 0) -> RunResults:
    collector = MetricsCollector()
    for i in range(30):
        send = T0 + i * 100 * MS
        chunks = [send + (20 + 5 * (i % 4) + 10 * k) * MS for k in range(5)]
        collector.add_record(
            streamed_record(
                f"r{i}",
                send,
                chunks,
                success=i % 10 != 9,
                prompt_len=50,
                cached_tokens=10,
                error_type=None if i % 10 != 9 else "http",
                worker_id=f"worker_{i % workers}" if workers else None,
            )
        )
    rows = []
    targets = [f"worker_{w}" for w in range(workers)] or ["server_0"]
    for t in range(5):
        for target in targets:
            for metric, value in (
                ("sglang:num_running_reqs", t),
                ("sglang:num_queue_reqs", 4 - t),
                ("sglang:token_usage", t / 10),
                ("sglang:cache_hit_rate", 0.5),
            ):
                rows.append({"t_s": float(t), "target": target, "metric": metric, "labels": "", "value": float(value)})
    df = collector.to_dataframe()
    return RunResults(
        name="unit",
        kind="routing" if workers else "node",
        summary=collector.get_metrics(),
        requests=df,
        records=list(collector.records),
        timeseries=pd.DataFrame(rows) if timeseries else pd.DataFrame(),
        context={**CONTEXT, "routing_policy": "round_robin", "num_workers": workers} if workers else CONTEXT,
        per_worker=per_worker_table(df, targets) if workers else None,
    )


def assert_pngs(paths: list[Path]) -> None:
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, p


def assert_labelled(figures: list[Figure], settings: str) -> None:
    """Every figure has a title block naming the settings, and every drawn axes labels both axes."""
    for fig in figures:
        title = fig.get_suptitle()
        assert settings in title.replace("\n", " "), title
        for ax in fig.axes:
            if ax.axison:
                assert ax.get_xlabel() and ax.get_ylabel(), (title, ax.get_title())


def test_node_plots_with_and_without_server_series(tmp_path: Path, saved: list[Figure]) -> None:
    paths = plot_node_results(run_results(), tmp_path / "plots")
    assert [p.name for p in paths] == [
        "latency_distributions.png",
        "latency_over_time.png",
        "throughput_over_time.png",
        "server_timeseries.png",
    ]
    assert_pngs(paths)
    assert_labelled(saved, "Backend: sim (Llama-3-8B@H100-SXM)")
    assert all("Max Running Requests: 64" in f.get_suptitle().replace("\n", " ") for f in saved)
    assert len(plot_node_results(run_results(timeseries=False), tmp_path / "no_ts")) == 3
    empty = RunResults(name="e", kind="node", summary={}, requests=pd.DataFrame(), records=[])
    assert plot_node_results(empty, tmp_path / "empty") == []


def test_legends_never_sit_on_a_plot(tmp_path: Path, saved: list[Figure]) -> None:
    plot_node_results(run_results(), tmp_path)
    plot_routing_results(run_results(workers=2), tmp_path / "routing")
    for fig in saved:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # type: ignore[no-untyped-call]
        renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
        plotted = [ax for ax in fig.axes if ax.axison]
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            box = legend.get_window_extent(renderer)
            for other in plotted:
                assert not box.overlaps(other.get_window_extent(renderer)), fig.get_suptitle()


def test_routing_plots(tmp_path: Path, saved: list[Figure]) -> None:
    results = run_results(workers=2)
    paths = plot_routing_results(results, tmp_path)
    assert [p.name for p in paths] == ["worker_distribution.png", "latency_cdf.png", "queue_depth.png"]
    assert_pngs(paths)
    policies = plot_policy_comparison({"round_robin": results, "random": run_results(workers=2)}, tmp_path)
    assert [p.name for p in policies] == ["policy_latency_cdf.png", "policy_distribution.png"]
    assert_pngs(policies)
    assert_labelled(saved, "Model: m")


def test_comparison_plot_with_a_sweep_variable(tmp_path: Path, saved: list[Figure]) -> None:
    table = pd.DataFrame(
        {
            "request_rate": [1.0, 2.0, 4.0],
            "request_throughput": [1.0, 2.0, 3.5],
            "request_throughput_ci95": [0.1, np.nan, 0.2],
            "request_throughput_ratio": [1.0, 2.0, 3.5],
            "output_throughput": [100.0, 200.0, 350.0],
            "median_server_latency": [100.0, 120.0, 300.0],
            "p99_server_latency": [150.0, 200.0, 900.0],
        },
        index=pd.Index(["r1", "r2", "r4"], name="label"),
    )
    assert_pngs([plot_comparison(table, tmp_path / "cmp.png", sweep_variable="request_rate", settings="Model: m")])
    assert_pngs([plot_comparison(table, tmp_path / "cmp_plain.png", settings="Model: m")])
    assert_labelled(saved, "Model: m")


def test_sweep_plots(tmp_path: Path, saved: list[Figure]) -> None:
    table = pd.DataFrame(
        {
            "point": ["a", "b", "c"],
            "request_rate": [1.0, 2.0, 4.0],
            "output_throughput": [10.0, 20.0, None],  # c failed: no numbers
            "p50_server_latency": [5.0, 6.0, None],
            "p99_server_latency": [9.0, 12.0, None],
            "mean_ttft": [1.0, 2.0, None],
            "p99_ttft": [2.0, 3.0, None],
        }
    )
    assert_pngs(plot_sweep(table, ["request_rate"], tmp_path, settings="Model: m"))
    assert_labelled(saved, "Model: m")
