"""Routing plots: per-worker distribution bars, latency CDFs by worker and by policy, per-worker queue
depth over time. Every figure has the run's title block, labelled axes and legends beside the data.

Workers appear in natural order (``worker_2`` before ``worker_10``). Fleets stay readable at any size:
beyond :data:`MANY_WORKERS` workers the per-worker lines become a heatmap (queue depth) or grey lines
with the extremes named (latency CDF), and beyond :data:`LABELLED_BARS` bars the bars lose their value
labels and the panels stack vertically.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..metrics import definitions as d
from .plot_data import server_series
from .plots import (
    Axes,
    integer_ticks,
    legend_below,
    legend_outside,
    new_figure,
    new_figure_with_legend_row,
    plot_cdf,
    save_figure,
    title_block,
)
from .report import common_settings_line, settings_line

__all__ = [
    "LABELLED_BARS",
    "MANY_WORKERS",
    "RoutingRun",
    "plot_latency_by_arm",
    "plot_policy_comparison",
    "plot_routing_results",
]

# Beyond this many workers one line (and legend entry) per worker is unreadable.
MANY_WORKERS = 8
# Beyond this many bars per panel value labels overlap: the bars go unlabelled, the panels stack.
LABELLED_BARS = 12


class RoutingRun(Protocol):
    """What the routing plots read from a run (``RunResults`` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> dict[str, Any]: ...

    @property
    def context(self) -> dict[str, Any]: ...

    @property
    def requests(self) -> pd.DataFrame: ...

    @property
    def timeseries(self) -> pd.DataFrame: ...

    @property
    def per_worker(self) -> pd.DataFrame | None: ...


def _natural_key(name: object) -> tuple[int, str, int]:
    """Sort key putting ``worker_2`` before ``worker_10`` (a trailing number compares as a number) and
    names without a number (``unattributed``) last."""
    text = str(name)
    match = re.fullmatch(r"(.*?)(\d+)", text)
    return (0, match.group(1), int(match.group(2))) if match else (1, text, 0)


def _natural(names: Any) -> list[str]:
    return sorted((str(n) for n in names), key=_natural_key)


def _short_names(names: list[str]) -> tuple[list[str], str]:
    """Tick labels without the prefix the numbered names share (``worker_7`` → ``7``; other names such
    as ``unattributed`` stay whole) and the matching axis label."""
    numbered = [n for n in names if re.fullmatch(r"\D*\d+", n)]
    prefixes = {re.sub(r"\d+$", "", n) for n in numbered}
    if len(numbered) < 2 or len(prefixes) != 1:
        return names, "worker"
    prefix = prefixes.pop()
    return [n.removeprefix(prefix) if n in numbered else n for n in names], f"worker ({prefix}<n>)"


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["success"].astype(bool)] if not df.empty and "success" in df else df.iloc[0:0]


def _p99_label(name: str, values: pd.Series) -> str:
    p99 = d.stats(pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float))["p99"]
    return f"{name} (P99 {'n/a' if p99 is None else f'{p99:,.0f} ms'})"


def _queue_lines(ax: Axes, ts: pd.DataFrame, metric: str) -> None:
    """One line per worker (few workers)."""
    sub = ts[ts["metric"] == metric]
    groups = dict(list(sub.groupby("target", sort=False)))
    for i, target in enumerate(_natural(groups)):
        grp = groups[target]
        ax.plot(grp["t_s"], grp["value"], linestyle=("-", "--", ":", "-.")[i % 4], linewidth=1.8, label=target)
    ax.set_ylabel("requests")
    ax.set_ylim(0, max(1.0, 1.1 * float(sub["value"].max())))  # counts: at least 0–1
    integer_ticks(ax.yaxis)


def _queue_heatmap(ax: Axes, ts: pd.DataFrame, metric: str) -> Any:
    """A worker × time heatmap (many workers): each worker's last sample at or before each grid time."""
    sub = ts[ts["metric"] == metric].sort_values("t_s")
    groups = dict(list(sub.groupby("target", sort=False)))
    workers = _natural(groups)
    t_max = float(sub["t_s"].max()) if len(sub) else 1.0
    grid = np.linspace(0.0, max(t_max, 1e-9), 200)
    values = np.full((len(workers), grid.size), np.nan)
    for row, target in enumerate(workers):
        times = groups[target]["t_s"].to_numpy(dtype=float)
        index = np.searchsorted(times, grid, side="right") - 1
        seen = index >= 0
        values[row, seen] = groups[target]["value"].to_numpy(dtype=float)[index[seen]]
    image = ax.imshow(
        values,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        origin="lower",
        extent=(0.0, max(t_max, 1e-9), -0.5, len(workers) - 0.5),
        vmin=0.0,
        vmax=max(1.0, float(np.nanmax(values)) if np.isfinite(values).any() else 1.0),
    )
    labels, axis_label = _short_names(workers)
    step = max(1, len(workers) // 32)
    ax.set_yticks(np.arange(0, len(workers), step), labels[::step], fontsize=7)
    ax.set_ylabel(axis_label)
    return image


def _queue_depth(results: RoutingRun, path: Path) -> Path | None:
    ts = server_series(results.timeseries, results.requests)
    if ts.empty or not ts["metric"].isin(["sglang:num_queue_reqs", "sglang:num_running_reqs"]).any():
        return None
    panels = (
        ("sglang:num_queue_reqs", "queued requests per worker"),
        ("sglang:num_running_reqs", "running requests per worker"),
    )
    workers = ts.loc[ts["metric"].isin([m for m, _ in panels]), "target"].nunique()
    if workers > MANY_WORKERS:
        fig, axes = new_figure(1, 2, (15, max(5.0, 2.0 + 0.16 * workers)))
        for ax, (metric, title) in zip(axes, panels, strict=True):
            image = _queue_heatmap(ax, ts, metric)
            integer_ticks(fig.colorbar(image, ax=ax, label="requests", shrink=0.9).ax.yaxis)
            ax.set_title(f"{title} (colour = requests)", fontsize=10)
            ax.set_xlabel("time (s from run start)")
    else:
        fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.4), legend_height=0.22)
        for ax, legend_ax, (metric, title) in zip(axes, legends, panels, strict=True):
            _queue_lines(ax, ts, metric)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("time (s from run start)")
            ax.grid(alpha=0.3)
            legend_below(legend_ax, ax, title="worker", ncol=4)
    title_block(fig, f"{results.name}: per-worker queue depth (sampled /metrics)", settings_line(results.context))
    return save_figure(fig, path)


def _bar_values(ax: Axes, bars: Any, labels: list[str], many: bool) -> None:
    if not many:
        ax.bar_label(bars, labels=labels, fontsize=8)


def _worker_distribution(results: RoutingRun, table: pd.DataFrame, path: Path) -> Path:
    workers = table["worker_id"].astype(str).tolist()
    many = len(workers) > LABELLED_BARS
    if many:  # panels stacked, each as wide as the fleet needs; legends beside the panels
        fig, axes = new_figure(3, 1, (max(12.0, 0.3 * len(workers) + 3.0), 11.0))
    else:
        fig, axes, legends = new_figure_with_legend_row(1, 3, (18, 5.4), legend_height=0.2)
    x = np.arange(len(workers))
    failed = table["failed"].astype(float).to_numpy()
    completed = table["requests"].astype(float).to_numpy() - failed
    axes[0].bar(x, completed, 0.6, label="completed")
    bars = axes[0].bar(x, failed, 0.6, bottom=completed, color="tab:red", hatch="//", label="failed")
    _bar_values(axes[0], bars, [f"{int(c + f)}" for c, f in zip(completed, failed, strict=True)], many)
    axes[0].set_ylim(0, 1.15 * float(max(completed + failed, default=0.0)) + 0.5)  # room for the labels
    axes[0].set_ylabel("requests")
    integer_ticks(axes[0].yaxis)
    axes[0].set_title("requests per worker", fontsize=10)
    hit = table["cache_hit_rate"].astype(float)  # NaN: no completed request, no bar
    bars = axes[1].bar(x, hit.fillna(0.0), 0.6, label="Σ cached / Σ prompt tokens")
    _bar_values(axes[1], bars, ["n/a" if np.isnan(v) else f"{100 * v:.1f}%" for v in hit], many)
    axes[1].set_ylabel("prefix cache hit rate (0–1)")
    axes[1].set_ylim(0, 1.1)
    axes[1].set_title("cache hit rate per worker (no bar: no completed request)", fontsize=10)
    for k, (col, name) in enumerate((("p50_latency_ms", "P50"), ("p99_latency_ms", "P99"))):
        bars = axes[2].bar(x + (k - 0.5) * 0.35, table[col].astype(float), 0.35, label=name, hatch=("", "//")[k])
        _bar_values(axes[2], bars, [_bar_text(v) for v in table[col].astype(float)], many)
    axes[2].set_ylabel("server latency (ms)")
    axes[2].set_title("server latency per worker (completed requests)", fontsize=10)
    ticks, xlabel = _short_names(workers) if many else (workers, "worker")
    for k, ax in enumerate(axes):
        ax.set_xticks(x, ticks, rotation=0 if many else 20, ha="center" if many else "right", fontsize=8)
        ax.set_xlim(-0.6, len(workers) - 0.4)
        ax.set_xlabel(xlabel)
        ax.margins(y=0.12)
        ax.grid(axis="y", alpha=0.3)
        if many:
            legend_outside(ax)
        else:
            legend_below(legends[k], ax, ncol=2)
    title_block(fig, f"{results.name}: per-worker distribution", settings_line(results.context))
    return save_figure(fig, path)


def _bar_text(value: float) -> str:
    """A bar label: the value without decimals, ``n/a`` for NaN."""
    return "n/a" if np.isnan(value) else f"{value:,.0f}"


def _latency_by_worker(results: RoutingRun, path: Path) -> Path:
    fig, (ax,) = new_figure(1, 1, (10, 4.8))
    ok = _ok(results.requests)
    groups = dict(list(ok.groupby("worker_id", sort=False)))
    workers = _natural(groups)
    if len(workers) > MANY_WORKERS:  # grey lines, the extremes named: a legend of 32 entries is unreadable
        p99 = {w: d.stats(groups[w]["server_latency_ms"].to_numpy(dtype=float))["p99"] for w in workers}
        ranked = sorted((w for w in workers if p99[w] is not None), key=lambda w: p99[w] or 0.0)
        for k, wid in enumerate(workers):
            label = f"each of the {len(workers)} workers with completed requests" if k == 0 else None
            plot_cdf(ax, groups[wid]["server_latency_ms"], label or "_nolegend_", color="0.75")
        extremes = ((ranked[0], "tab:blue", "fastest"), (ranked[-1], "tab:red", "slowest")) if len(ranked) > 1 else ()
        for wid, color, what in extremes:
            values = groups[wid]["server_latency_ms"]
            label = _p99_label(f"{what} worker by P99: {wid}, {len(values)} requests", values)
            plot_cdf(ax, groups[wid]["server_latency_ms"], label, color=color)
    else:
        for k, wid in enumerate(workers):
            plot_cdf(ax, groups[wid]["server_latency_ms"], _p99_label(wid, groups[wid]["server_latency_ms"]), k + 1)
    plot_cdf(ax, ok["server_latency_ms"], _p99_label("all workers", ok["server_latency_ms"]), color="black")
    ax.set_xlabel("server latency (ms)")
    ax.set_ylabel("cumulative share of completed requests (0–1)")
    ax.grid(alpha=0.3)
    legend_outside(ax, "worker")
    title_block(fig, f"{results.name}: server latency CDF by worker", settings_line(results.context))
    return save_figure(fig, path)


def plot_routing_results(results: RoutingRun, out_dir: Path) -> list[Path]:
    """Up to three PNGs for one routing run: ``worker_distribution.png`` (requests, cache hit rate and
    P50/P99 latency per worker), ``latency_cdf.png`` (by worker and over all) and ``queue_depth.png``
    (per-worker queued and running requests over time, when server samples exist; warmup dropped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    table = results.per_worker if results.per_worker is not None else pd.DataFrame()
    if not table.empty:
        paths.append(_worker_distribution(results, table, out_dir / "worker_distribution.png"))
    if not results.requests.empty:
        paths.append(_latency_by_worker(results, out_dir / "latency_cdf.png"))
    queue = _queue_depth(results, out_dir / "queue_depth.png")
    if queue is not None:
        paths.append(queue)
    return paths


def _settings(results: Mapping[str, RoutingRun]) -> str:
    return common_settings_line([res.context for res in results.values()])


def _policy_cdfs(results: Mapping[str, RoutingRun], path: Path, label: str = "policy", title: str = "") -> Path:
    fig, axes = new_figure(1, 2, (15, 4.8))
    for k, (policy, res) in enumerate(results.items()):
        ok = _ok(res.requests)
        if not ok.empty:
            plot_cdf(axes[0], ok["server_latency_ms"], _p99_label(policy, ok["server_latency_ms"]), style=k)
            plot_cdf(axes[1], ok["ttft_ms"], _p99_label(policy, ok["ttft_ms"]), style=k)
    for ax, xlabel, panel in zip(
        axes, ("server latency (ms)", "TTFT (ms)"), ("server latency CDF", "TTFT CDF"), strict=True
    ):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("cumulative share of completed requests (0–1)")
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
        legend_outside(ax, label)
    title_block(fig, title or "Latency by routing policy", _settings(results))
    return save_figure(fig, path)


def plot_latency_by_arm(results: Mapping[str, RoutingRun], path: Path, label: str, title: str) -> Path:
    """Server latency and TTFT CDFs of each run of ``results`` (e.g. ``pd`` and ``colocated``), one line
    per key, the legend titled ``label``; written to ``path``."""
    return _policy_cdfs(results, path, label, title)


def _worker_table(res: RoutingRun) -> pd.DataFrame:
    table = res.per_worker
    if table is None or table.empty:
        return pd.DataFrame(columns=["worker_id", "requests"])
    return table[table["worker_id"] != "unattributed"]


def _requests_by_worker(ax: Axes, results: Mapping[str, RoutingRun]) -> None:
    """Grouped bars of requests per worker, one colour per policy (few workers)."""
    names = list(results)
    width = 0.8 / max(1, len(names))
    workers: list[str] = []
    for k, policy in enumerate(names):
        table = _worker_table(results[policy])
        if table.empty:
            continue
        workers = table["worker_id"].astype(str).tolist()
        x = np.arange(len(table)) + (k - (len(names) - 1) / 2) * width
        bars = ax.bar(x, table["requests"].astype(float), width, label=policy, hatch=("", "//", "..", "xx")[k % 4])
        if len(names) * len(workers) <= 2 * LABELLED_BARS:
            ax.bar_label(bars, fontsize=8)
    ax.set_xticks(np.arange(len(workers)), workers)
    ax.set_xlabel("worker")
    ax.set_title("requests per worker", fontsize=10)


def _requests_by_rank(ax: Axes, results: Mapping[str, RoutingRun]) -> None:
    """Requests per worker sorted busiest first, one line per policy (many workers): the steeper the
    line, the more uneven the load."""
    for k, (policy, res) in enumerate(results.items()):
        counts = np.sort(_worker_table(res)["requests"].to_numpy(dtype=float))[::-1]
        if counts.size:
            style = ("-", "--", ":", "-.")[k % 4]
            ax.plot(np.arange(1, counts.size + 1), counts, linestyle=style, marker=".", linewidth=1.6, label=policy)
    integer_ticks(ax.xaxis)
    ax.set_xlabel("worker rank (busiest first)")
    ax.set_title("requests per worker, workers sorted by load", fontsize=10)


def _policy_distribution(results: Mapping[str, RoutingRun], path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.4), legend_height=0.2)
    names = list(results)
    workers = max((len(_worker_table(res)) for res in results.values()), default=0)
    if workers > MANY_WORKERS:
        _requests_by_rank(axes[0], results)
    else:
        _requests_by_worker(axes[0], results)
    axes[0].set_ylabel("requests")
    axes[0].set_ylim(bottom=0)
    integer_ticks(axes[0].yaxis)
    hit = [results[p].summary.get("cache_hit_rate") for p in names]
    bars = axes[1].bar(np.arange(len(names)), [float(v or 0.0) for v in hit], 0.6)
    axes[1].bar_label(bars, labels=["n/a" if v is None else f"{100 * float(v):.1f}%" for v in hit], fontsize=8)
    axes[1].set_xticks(np.arange(len(names)), names, rotation=20, ha="right")
    axes[1].set_xlabel("routing policy")
    axes[1].set_ylabel("prefix cache hit rate (0–1)")
    axes[1].set_ylim(0, 1.1)
    axes[1].set_title("cache hit rate (Σ cached / Σ prompt tokens)", fontsize=10)
    for ax in axes:
        ax.margins(y=0.12)
        ax.grid(axis="y", alpha=0.3)
    legend_below(legends[0], axes[0], title="policy", ncol=4)
    title_block(fig, "Load distribution by routing policy", _settings(results))
    return save_figure(fig, path)


def plot_policy_comparison(results: Mapping[str, RoutingRun], out_dir: Path) -> list[Path]:
    """PNGs comparing policies: ``policy_latency_cdf.png`` (server latency and TTFT CDFs per policy) and
    ``policy_distribution.png`` (requests per worker per policy, cache hit rate per policy)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _policy_cdfs(results, out_dir / "policy_latency_cdf.png"),
        _policy_distribution(results, out_dir / "policy_distribution.png"),
    ]
