"""Routing plots: per-worker distribution bars, latency CDFs by worker and by policy, per-worker queue
depth over time. Every figure has the run's title block, labelled axes and legends beside the data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..metrics import definitions as d
from .plot_data import server_series
from .plots import (
    legend_below,
    legend_outside,
    new_figure,
    new_figure_with_legend_row,
    plot_cdf,
    save_figure,
    title_block,
)
from .report import common_settings_line, settings_line

__all__ = ["RoutingRun", "plot_policy_comparison", "plot_routing_results"]


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


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["success"].astype(bool)] if not df.empty and "success" in df else df.iloc[0:0]


def _p99_label(name: str, values: pd.Series) -> str:
    p99 = d.stats(pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float))["p99"]
    return f"{name} (P99 {'n/a' if p99 is None else f'{p99:,.0f} ms'})"


def _queue_depth(results: RoutingRun, path: Path) -> Path | None:
    ts = server_series(results.timeseries, results.requests)
    if ts.empty or not ts["metric"].isin(["sglang:num_queue_reqs", "sglang:num_running_reqs"]).any():
        return None
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.4), legend_height=0.22)
    panels = (
        ("sglang:num_queue_reqs", "queued requests per worker"),
        ("sglang:num_running_reqs", "running requests per worker"),
    )
    for ax, legend_ax, (metric, title) in zip(axes, legends, panels, strict=True):
        for i, (target, grp) in enumerate(ts[ts["metric"] == metric].groupby("target", sort=True)):
            style = ("-", "--", ":", "-.")[i % 4]
            ax.plot(grp["t_s"], grp["value"], linestyle=style, linewidth=1.8, label=str(target))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s from run start)")
        ax.set_ylabel("requests")
        ax.set_ylim(0, max(1.0, 1.1 * float(ts.loc[ts["metric"] == metric, "value"].max())))  # counts: ≥ 0–1
        ax.grid(alpha=0.3)
        legend_below(legend_ax, ax, title="worker", ncol=4)
    title_block(fig, f"{results.name}: per-worker queue depth (sampled /metrics)", settings_line(results.context))
    return save_figure(fig, path)


def _worker_distribution(results: RoutingRun, table: pd.DataFrame, path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(1, 3, (18, 5.4), legend_height=0.2)
    workers = table["worker_id"].astype(str).tolist()
    x = np.arange(len(workers))
    failed = table["failed"].astype(float).to_numpy()
    completed = table["requests"].astype(float).to_numpy() - failed
    axes[0].bar(x, completed, 0.6, label="completed")
    bars = axes[0].bar(x, failed, 0.6, bottom=completed, color="tab:red", hatch="//", label="failed")
    axes[0].bar_label(bars, labels=[f"{int(c + f)}" for c, f in zip(completed, failed, strict=True)], fontsize=8)
    axes[0].set_ylim(0, 1.15 * float(max(completed + failed, default=0.0)) + 0.5)  # room for the labels
    axes[0].set_ylabel("requests")
    axes[0].set_title("requests per worker", fontsize=10)
    hit = table["cache_hit_rate"].astype(float).fillna(0.0)
    bars = axes[1].bar(x, hit, 0.6, label="Σ cached / Σ prompt tokens")
    axes[1].bar_label(bars, labels=[f"{100 * v:.1f}%" for v in hit], fontsize=8)
    axes[1].set_ylabel("prefix cache hit rate (0–1)")
    axes[1].set_ylim(0, 1.1)
    axes[1].set_title("cache hit rate per worker", fontsize=10)
    for k, (col, name) in enumerate((("p50_latency_ms", "P50"), ("p99_latency_ms", "P99"))):
        bars = axes[2].bar(x + (k - 0.5) * 0.35, table[col].astype(float), 0.35, label=name, hatch=("", "//")[k])
        axes[2].bar_label(bars, fmt="%.0f", fontsize=8)
    axes[2].set_ylabel("server latency (ms)")
    axes[2].set_title("server latency per worker", fontsize=10)
    for ax, legend_ax in zip(axes, legends, strict=True):
        ax.set_xticks(x, workers, rotation=20, ha="right")
        ax.set_xlabel("worker")
        ax.margins(y=0.12)
        ax.grid(axis="y", alpha=0.3)
        legend_below(legend_ax, ax, ncol=2)
    title_block(fig, f"{results.name}: per-worker distribution", settings_line(results.context))
    return save_figure(fig, path)


def _latency_by_worker(results: RoutingRun, path: Path) -> Path:
    fig, (ax,) = new_figure(1, 1, (10, 4.8))
    ok = _ok(results.requests)
    for k, (wid, grp) in enumerate(ok.groupby("worker_id", sort=True)):
        plot_cdf(ax, grp["server_latency_ms"], _p99_label(str(wid), grp["server_latency_ms"]), style=k + 1)
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


def _policy_cdfs(results: Mapping[str, RoutingRun], path: Path) -> Path:
    fig, axes = new_figure(1, 2, (15, 4.8))
    for k, (policy, res) in enumerate(results.items()):
        ok = _ok(res.requests)
        if not ok.empty:
            plot_cdf(axes[0], ok["server_latency_ms"], _p99_label(policy, ok["server_latency_ms"]), style=k)
            plot_cdf(axes[1], ok["ttft_ms"], _p99_label(policy, ok["ttft_ms"]), style=k)
    for ax, label, title in zip(
        axes, ("server latency (ms)", "TTFT (ms)"), ("server latency CDF", "TTFT CDF"), strict=True
    ):
        ax.set_xlabel(label)
        ax.set_ylabel("cumulative share of completed requests (0–1)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        legend_outside(ax, "policy")
    title_block(fig, "Latency by routing policy", _settings(results))
    return save_figure(fig, path)


def _policy_distribution(results: Mapping[str, RoutingRun], path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.4), legend_height=0.2)
    names = list(results)
    width = 0.8 / max(1, len(names))
    workers: list[str] = []
    for k, policy in enumerate(names):
        table = results[policy].per_worker
        if table is None or table.empty:
            continue
        table = table[table["worker_id"] != "unattributed"]
        workers = table["worker_id"].astype(str).tolist()
        x = np.arange(len(table)) + (k - (len(names) - 1) / 2) * width
        bars = axes[0].bar(x, table["requests"].astype(float), width, label=policy, hatch=("", "//", "..", "xx")[k % 4])
        axes[0].bar_label(bars, fontsize=8)
    axes[0].set_xticks(np.arange(len(workers)), workers)
    axes[0].set_xlabel("worker")
    axes[0].set_ylabel("requests")
    axes[0].set_title("requests per worker", fontsize=10)
    hit = [float(results[p].summary.get("cache_hit_rate") or 0.0) for p in names]
    bars = axes[1].bar(np.arange(len(names)), hit, 0.6)
    axes[1].bar_label(bars, labels=[f"{100 * v:.1f}%" for v in hit], fontsize=8)
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
