"""Routing plots: per-worker distribution bars, latency CDFs per policy, per-worker queue depth over time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .plots import Axes, new_figure, save_figure
from .plots import plot_cdf as _cdf

__all__ = ["RoutingRun", "plot_policy_comparison", "plot_routing_results"]


class RoutingRun(Protocol):
    """What the routing plots read from a run (``RoutingRun`` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> dict[str, Any]: ...

    @property
    def requests(self) -> pd.DataFrame: ...

    @property
    def timeseries(self) -> pd.DataFrame: ...

    @property
    def per_worker(self) -> pd.DataFrame | None: ...


def _queue_depth(ax: Axes, ts: pd.DataFrame, title: str) -> bool:
    if ts.empty or "metric" not in ts:
        return False
    sub = ts[ts["metric"].isin(["sglang:num_queue_reqs", "sglang:num_running_reqs"])]
    if sub.empty:
        return False
    for (target, metric), grp in sub.groupby(["target", "metric"]):
        style = "-" if str(metric).endswith("queue_reqs") else ":"
        short = "queued" if str(metric).endswith("queue_reqs") else "running"
        ax.plot(grp["t_s"], grp["value"], style, label=f"{target} {short}")
    ax.set_title(title)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return True


def _worker_distribution(results: RoutingRun, table: pd.DataFrame, path: Path) -> Path:
    fig, axes = new_figure(1, 3, (14, 4))
    for ax, col, title in zip(
        axes,
        ("requests", "cache_hit_rate", "p99_latency_ms"),
        ("requests per worker", "cache hit rate", "P99 latency (ms)"),
        strict=True,
    ):
        ax.bar(table["worker_id"].astype(str), table[col].astype(float))
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{results.name}: per-worker distribution")
    return save_figure(fig, path)


def _latency_by_worker(results: RoutingRun, df: pd.DataFrame, path: Path) -> Path:
    fig, (ax,) = new_figure(1, 1, (7, 4))
    ok = df[df["success"].astype(bool)]
    for wid, grp in ok.groupby("worker_id"):
        _cdf(ax, grp["server_latency_ms"], str(wid))
    _cdf(ax, ok["server_latency_ms"], "all")
    ax.set_xlabel("server latency (ms)")
    ax.set_ylabel("CDF")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(f"{results.name}: latency CDF by worker")
    return save_figure(fig, path)


def plot_routing_results(results: RoutingRun, out_dir: Path) -> list[Path]:
    """Up to three PNGs for one routing run: ``worker_distribution.png`` (requests, cache hit rate and
    P99 latency per worker), ``latency_cdf.png`` (by worker) and ``queue_depth.png`` (per-worker
    running and queued requests over time, when server samples exist)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    table = results.per_worker if results.per_worker is not None else pd.DataFrame()
    if not table.empty:
        paths.append(_worker_distribution(results, table, out_dir / "worker_distribution.png"))
    if not results.requests.empty:
        paths.append(_latency_by_worker(results, results.requests, out_dir / "latency_cdf.png"))
    fig, (ax,) = new_figure(1, 1, (9, 4))
    if _queue_depth(ax, results.timeseries, f"{results.name}: per-worker queue depth"):
        paths.append(save_figure(fig, out_dir / "queue_depth.png"))
    return paths


def _policy_cdfs(results: Mapping[str, RoutingRun], path: Path) -> Path:
    fig, axes = new_figure(1, 2, (12, 4))
    for policy, res in results.items():
        ok = res.requests[res.requests["success"].astype(bool)] if not res.requests.empty else res.requests
        if not ok.empty:
            _cdf(axes[0], ok["server_latency_ms"], policy)
            _cdf(axes[1], ok["ttft_ms"], policy)
    for ax, label in zip(axes, ("server latency (ms)", "TTFT (ms)"), strict=True):
        ax.set_xlabel(label)
        ax.set_ylabel("CDF")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("latency by routing policy")
    return save_figure(fig, path)


def _policy_distribution(results: Mapping[str, RoutingRun], path: Path) -> Path:
    fig, axes = new_figure(1, 2, (12, 4))
    names = list(results)
    width = 0.8 / max(1, len(names))
    for k, policy in enumerate(names):
        table = results[policy].per_worker
        if table is None or table.empty:
            continue
        table = table[table["worker_id"] != "unattributed"]
        x = np.arange(len(table)) + k * width
        axes[0].bar(x, table["requests"].astype(float), width, label=policy)
        axes[0].set_xticks(np.arange(len(table)) + 0.4 - width / 2, table["worker_id"].astype(str))
    axes[0].set_title("requests per worker")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    hit = [results[p].summary.get("cache_hit_rate") or 0.0 for p in names]
    axes[1].bar(names, hit)
    axes[1].set_title("cache hit rate")
    return save_figure(fig, path)


def plot_policy_comparison(results: Mapping[str, RoutingRun], out_dir: Path) -> list[Path]:
    """PNGs comparing policies: ``policy_latency_cdf.png`` (latency and TTFT CDFs per policy) and
    ``policy_distribution.png`` (requests per worker per policy, cache hit rate per policy)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _policy_cdfs(results, out_dir / "policy_latency_cdf.png"),
        _policy_distribution(results, out_dir / "policy_distribution.png"),
    ]
