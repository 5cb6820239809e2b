"""PNG plots of a node run, and the figure helpers every plot module of this package draws through.

The only module that imports matplotlib (Agg backend); :mod:`.routing_plots`, :mod:`.sweep_plots` and
:mod:`.compare_plots` use :func:`new_figure`, :func:`title_block`, :func:`legend_outside` and
:func:`save_figure`. Figures are plain :class:`matplotlib.figure.Figure` objects (no pyplot state), so
plotting is safe from any thread and nothing has to be closed.

Every figure carries a title block (what it shows, then the run's settings), labels with units on
every axis and legends beside the axes, never over the data. The node figures draw the tables of
:func:`.plot_data.node_plot_data`, which uses the report's metric definitions.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..metrics import definitions as d
from ..results import RunResults
from .plot_data import NodePlotData, fleet_band, node_plot_data
from .report import settings_line

__all__ = [
    "Axes",
    "draw_node_figures",
    "integer_ticks",
    "legend_below",
    "legend_outside",
    "new_figure",
    "new_figure_with_legend_row",
    "plot_cdf",
    "plot_node_results",
    "save_figure",
    "title_block",
]

DPI = 100
# (line style, line width) per series index: series stay apart in grey-scale and where they overlap.
LINE_STYLES: tuple[tuple[str, float], ...] = (("-", 2.2), ("--", 1.6), (":", 2.0), ("-.", 1.6))
# (title, metrics, y label, y limits 0–1)
SERVER_PANELS: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    ("running vs queued requests", ("sglang:num_running_reqs", "sglang:num_queue_reqs"), "requests", False),
    ("KV cache token usage", ("sglang:token_usage",), "share of KV token slots (0–1)", True),
)
CACHE_GAUGE = "sglang:cache_hit_rate"
# Beyond this many servers a line per server (and legend entry) is unreadable: mean + min–max band.
MAX_SERVER_LINES = 8


# ----------------------------------------------------------------------------- helpers
def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (8.0, 4.5)) -> tuple[Figure, list[Axes]]:
    """A figure (constrained layout, so titles and outside legends get room) with an ``nrows × ncols``
    grid of axes, returned flat in row-major order."""
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in grid for ax in row]


def new_figure_with_legend_row(
    nrows: int, ncols: int, figsize: tuple[float, float], legend_height: float = 0.3
) -> tuple[Figure, list[Axes], list[Axes]]:
    """Like :func:`new_figure`, plus one row of blank axes under the grid (``legend_height`` of a plot
    row) to hold each column's legend (:func:`legend_below`): legends never cover data or squeeze a
    plot. Returns the figure, the plot axes (row-major) and the legend axes (one per column)."""
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.subplots(nrows + 1, ncols, squeeze=False, height_ratios=[1.0] * nrows + [legend_height])
    legend_axes = list(grid[-1])
    for ax in legend_axes:
        ax.axis("off")
    return fig, [ax for row in grid[:-1] for ax in row], legend_axes


def legend_below(legend_ax: Axes, *sources: Axes, title: str | None = None, ncol: int = 1) -> None:
    """The legend of the lines in ``sources`` drawn in ``legend_ax`` (a blank axes of
    :func:`new_figure_with_legend_row`); labels repeated across ``sources`` appear once."""
    entries: dict[str, Any] = {}
    for ax in sources:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        legend_ax.legend(
            list(entries.values()),
            list(entries),
            loc="upper center",
            fontsize=8,
            title=title,
            ncol=ncol,
            title_fontsize=8,
            frameon=False,
        )


def title_block(fig: Figure, title: str, settings: str) -> None:
    """The figure's title block: ``title``, then ``settings`` (e.g. :func:`.report.settings_line`)
    wrapped to the figure's width."""
    width_chars = max(40, int(fig.get_figwidth() * 15))
    lines = textwrap.wrap(settings, width_chars, break_on_hyphens=False) if settings else []
    fig.suptitle("\n".join([title, *lines]), fontsize=11)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created; cropped to what was drawn) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    return path


def legend_outside(ax: Axes, title: str | None = None) -> None:
    """The axes' legend to the right of its plot area (never over the data); nothing without labels."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, title=title)


def integer_ticks(axis: Axis) -> None:
    """Ticks on whole numbers only (counts: requests, ranks)."""
    axis.set_major_locator(MaxNLocator(integer=True))


def plot_cdf(ax: Axes, values: pd.Series | np.ndarray, label: str, style: int = 0, color: str | None = None) -> None:
    """Empirical CDF of ``values`` (NaN dropped) as a step line on ``ax``, drawn in line style ``style``
    of :data:`LINE_STYLES`; nothing for no values."""
    data = np.sort(pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float))
    if data.size:
        line, width = LINE_STYLES[style % len(LINE_STYLES)]
        y = np.arange(0, data.size + 1) / data.size  # from 0 at the smallest value: one value is a visible step
        x = np.concatenate([data[:1], data])
        ax.step(x, y, where="post", linestyle=line, linewidth=width, label=label, color=color)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


# ----------------------------------------------------------------------------- node run
# (panel title, x label, ((metric in NodePlotData.latency, legend name, population), ...))
LATENCY_PANELS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "latency per request",
        "latency (ms)",
        (
            ("server_latency", "server latency (finish − send)", "requests"),
            ("total_latency", "total latency (finish − arrival)", "requests"),
        ),
    ),
    ("time to first token", "TTFT (ms)", (("ttft", "TTFT (first token − send)", "requests"),)),
    (
        "inter-token latency and TPOT",
        "ITL / TPOT (ms)",
        (("itl", "ITL (every token gap)", "token gaps"), ("tpot", "TPOT per request", "requests")),
    ),
)


def _latency_label(name: str, values: np.ndarray) -> str:
    s = d.stats(values)
    return f"{name}\nP50 {_ms(s['median'])} · P99 {_ms(s['p99'])}"


def _distributions(data: NodePlotData, settings: str, path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(2, 3, (18, 10), legend_height=0.25)
    for col, (title, xlabel, series) in enumerate(LATENCY_PANELS):
        hist_ax, cdf_ax = axes[col], axes[3 + col]
        panel = data.latency[data.latency["metric"].isin([m for m, _, _ in series])]["value_ms"].to_numpy(dtype=float)
        bins: list[float] = np.histogram_bin_edges(panel, bins=40).tolist() if panel.size else []  # shared bins
        for k, (metric, name, population) in enumerate(series):
            values = data.latency.loc[data.latency["metric"] == metric, "value_ms"].to_numpy(dtype=float)
            if metric == "itl" and data.itl_stride > 1:
                name += f" (every {data.itl_stride}th)"
            if not values.size:
                continue
            line, width = LINE_STYLES[k]
            weights = np.full(values.size, 1.0 / values.size)
            label = f"{_latency_label(name, values)} · n={values.size:,} {population}"
            hist_ax.hist(
                values, bins=bins, weights=weights, histtype="step", linestyle=line, linewidth=width, label=label
            )
            plot_cdf(cdf_ax, values, label, style=k)
        hist_ax.set_title(f"{title}: histogram", fontsize=10)
        cdf_ax.set_title(f"{title}: CDF", fontsize=10)
        hist_ax.set_ylabel("share of values per bin")
        cdf_ax.set_ylabel("cumulative share of values (0–1)")
        for ax in (hist_ax, cdf_ax):
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        note = (
            "total = server latency + client queue time: the lines coincide when no request waited"
            if col == 0
            else None
        )
        legend_below(legends[col], cdf_ax, title=note)
    title_block(fig, "Latency distributions (completed requests)", settings)
    return save_figure(fig, path)


def _over_time(data: NodePlotData, settings: str, path: Path) -> Path:
    fig, axes = new_figure(1, 2, (15, 4.8))
    ok = data.requests[data.requests["success"].astype(bool)]
    for ax, key, ylabel in (
        (axes[0], "ttft_ms", "TTFT (ms)"),
        (axes[1], "server_latency_ms", "server latency (ms)"),
    ):
        ax.scatter(ok["send_t_s"], ok[key], s=8, alpha=0.6)
        ax.set_title(f"{ylabel.split(' (')[0]} of each completed request by its send time", fontsize=10)
        ax.set_xlabel("send time (s from run start)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    title_block(fig, "Latency over time", settings)
    return save_figure(fig, path)


def _throughput(data: NodePlotData, summary: Mapping[str, Any], settings: str, path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.6), legend_height=0.22)
    tput = data.output_throughput
    if not tput.empty:
        edges = np.append(tput["t_s"].to_numpy(dtype=float), float(tput["t_s"].iloc[-1]) + 1.0)
        values = tput["output_tokens_per_s"].to_numpy(dtype=float)
        axes[0].stairs(values, edges, linewidth=2.0, label="output tokens in each 1 s bucket (token times)")
        peak = int(values.argmax())
        axes[0].plot([edges[peak] + 0.5], [values[peak]], "v", color="black", label=f"peak {values[peak]:,.0f} tok/s")
        mean = summary.get("output_throughput")
        if mean is not None:
            axes[0].axhline(float(mean), color="gray", linestyle="--", label=f"run mean {float(mean):,.0f} tok/s")
    axes[0].set_title("output token throughput", fontsize=10)
    axes[0].set_ylabel("output tokens/s")
    fin = data.finished
    if not fin.empty:
        fin_edges = np.append(fin["t_s"].to_numpy(dtype=float), float(fin["t_s"].iloc[-1]) + 1.0)
        axes[1].stairs(fin["completed"].to_numpy(dtype=float), fin_edges, linewidth=2.0, label="completed")
        axes[1].stairs(fin["failed"].to_numpy(dtype=float), fin_edges, linestyle="--", color="tab:red", label="failed")
    axes[1].set_title("requests finished per 1 s bucket", fontsize=10)
    axes[1].set_ylabel("requests/s")
    for ax, legend_ax in zip(axes, legends, strict=True):
        ax.set_xlabel("time (s from run start)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        legend_below(legend_ax, ax, ncol=3)
    title_block(fig, "Throughput over time", settings)
    return save_figure(fig, path)


def _fleet_panel(ax: Axes, server: pd.DataFrame, metrics: tuple[str, ...]) -> None:
    """Many servers: each metric's mean across them, with the min–max band shaded."""
    for k, metric in enumerate(metrics):
        band = fleet_band(server, metric)
        if band.empty:
            continue
        line, width = LINE_STYLES[k % len(LINE_STYLES)]
        short = metric.removeprefix("sglang:")
        count = int(band["servers"].max())
        ax.plot(
            band["t_s"],
            band["mean"],
            linestyle=line,
            linewidth=width,
            color=f"C{k}",
            label=f"{short}: mean of {count} servers",
        )
        ax.fill_between(
            band["t_s"], band["min"], band["max"], color=f"C{k}", alpha=0.2, label=f"{short}: min–max across servers"
        )


def _server_panel(ax: Axes, server: pd.DataFrame, metrics: tuple[str, ...]) -> None:
    sub = server[server["metric"].isin(metrics)]
    if sub["target"].nunique() > MAX_SERVER_LINES:
        _fleet_panel(ax, sub, metrics)
        return
    for i, ((target, metric), grp) in enumerate(sub.groupby(["target", "metric"], sort=True)):
        line, width = LINE_STYLES[metrics.index(str(metric)) % len(LINE_STYLES)]
        short = str(metric).removeprefix("sglang:")
        ax.plot(
            grp["t_s"], grp["value"], linestyle=line, linewidth=width, color=f"C{i % 10}", label=f"{target} {short}"
        )


def _cache_panel(ax: Axes, data: NodePlotData, summary: Mapping[str, Any]) -> None:
    gauge = data.server[data.server["metric"] == CACHE_GAUGE]
    if gauge["target"].nunique() > MAX_SERVER_LINES:  # per-server batch gauges: only the run's own line
        gauge = gauge.iloc[0:0]
    for i, (target, grp) in enumerate(gauge.groupby("target", sort=True)):
        ax.plot(
            grp["t_s"],
            grp["value"],
            linestyle=":",
            marker=".",
            linewidth=1.2,
            color=f"C{i % 10}",
            label=f"{target}: last prefill batch (server gauge)",
        )
    cum = data.cache_hit_rate
    if not cum.empty:
        report = summary.get("cache_hit_rate")
        label = "completed requests so far: Σ cached / Σ prompt"
        if report is not None:
            label += f"\n(run value {100 * float(report):.1f}%)"
        ax.step(cum["t_s"], cum["cache_hit_rate"], where="post", color="black", linewidth=2.2, label=label)
    ax.set_title("prefix cache hit rate", fontsize=10)
    ax.set_ylabel("hit rate (0–1)")
    ax.set_ylim(-0.02, 1.05)


def _server_timeseries(data: NodePlotData, summary: Mapping[str, Any], settings: str, path: Path) -> Path | None:
    server = data.server
    wanted = [m for _, metrics, _, _ in SERVER_PANELS for m in metrics] + [CACHE_GAUGE]
    if server.empty or not server["metric"].isin(wanted).any():
        return None
    fig, axes, legends = new_figure_with_legend_row(1, 3, (20, 5.8), legend_height=0.3)
    for ax, (title, metrics, ylabel, ratio) in zip(axes, SERVER_PANELS, strict=False):
        _server_panel(ax, server, metrics)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_ylim(*((-0.02, 1.05) if ratio else (0.0, None)))
        if not ratio:
            integer_ticks(ax.yaxis)
    _cache_panel(axes[2], data, summary)
    for ax, legend_ax in zip(axes, legends, strict=True):
        ax.set_xlabel("time (s from run start)")
        ax.grid(alpha=0.3)
        legend_below(legend_ax, ax, ncol=2)
    title_block(fig, "Server state over time (sampled /metrics; warmup samples dropped)", settings)
    return save_figure(fig, path)


def draw_node_figures(
    data: NodePlotData, summary: Mapping[str, Any], context: Mapping[str, Any], out_dir: Path
) -> list[Path]:
    """Draw the node figures of ``data`` (:func:`.plot_data.node_plot_data`) into ``out_dir``; the
    title block comes from ``context`` and reference lines (mean throughput, run cache hit rate) from
    ``summary``. Returns the PNG paths (see :func:`plot_node_results`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_line(context)
    paths: list[Path] = []
    if not data.requests.empty:
        paths.append(_distributions(data, settings, out_dir / "latency_distributions.png"))
        paths.append(_over_time(data, settings, out_dir / "latency_over_time.png"))
        paths.append(_throughput(data, summary, settings, out_dir / "throughput_over_time.png"))
    server = _server_timeseries(data, summary, settings, out_dir / "server_timeseries.png")
    if server is not None:
        paths.append(server)
    return paths


def plot_node_results(results: RunResults, out_dir: Path) -> list[Path]:
    """Write the PNGs of one node run and return their paths.

    Args:
        results: The run (records, per-request table, time series, summary and context).
        out_dir: Directory for ``latency_distributions.png`` (histograms + CDFs of server/total
            latency, TTFT, ITL and TPOT), ``latency_over_time.png`` (TTFT and server latency by send
            time), ``throughput_over_time.png`` (output tokens/s in 1 s buckets of token times, whose
            peak is the report's ``peak_output_throughput``; requests finished per second) and, with
            server samples, ``server_timeseries.png`` (running vs queued requests, KV token usage,
            prefix cache hit rate).
    """
    data = node_plot_data(results.records, results.requests, results.timeseries)
    return draw_node_figures(data, results.summary, results.context, out_dir)
