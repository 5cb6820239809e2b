"""Node test plots (matplotlib with the Agg backend is imported only in analysis/)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

__all__ = ["plot_node_results"]


def _cdf(ax: Axes, values: pd.Series, label: str) -> None:
    data = np.sort(values.dropna().to_numpy(dtype=float))
    if data.size:
        ax.plot(data, np.arange(1, data.size + 1) / data.size, label=label)


def _latency_figure(df: pd.DataFrame, path: Path) -> Path:
    ok = df[df["success"].astype(bool)]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for col, label in (
        ("ttft_ms", "TTFT"),
        ("server_latency_ms", "server latency"),
        ("tpot_ms", "TPOT"),
        ("total_latency_ms", "total latency"),
    ):
        _cdf(axes[0, 0], ok[col], label)
    axes[0, 0].set_xscale("log")
    axes[0, 0].set_xlabel("ms (log)")
    axes[0, 0].set_ylabel("CDF")
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title("latency CDFs")
    axes[0, 1].hist(ok["ttft_ms"].dropna(), bins=40, color="tab:blue")
    axes[0, 1].set_title("TTFT distribution")
    axes[0, 1].set_xlabel("ms")
    axes[1, 0].scatter(ok["send_s"], ok["ttft_ms"], s=6, label="TTFT")
    axes[1, 0].scatter(ok["send_s"], ok["server_latency_ms"], s=6, label="server latency")
    axes[1, 0].set_xlabel("send time (s)")
    axes[1, 0].set_ylabel("ms")
    axes[1, 0].legend(fontsize=8)
    axes[1, 0].set_title("latency over time")
    if not ok.empty:
        end = ok["finish_s"].dropna()
        bins = np.arange(0, float(end.max()) + 1.0, 1.0) if len(end) else np.arange(2)
        counts, edges = np.histogram(end, bins=bins, weights=ok.loc[end.index, "output_tokens"])
        axes[1, 1].step(edges[:-1], counts, where="post")
    axes[1, 1].set_xlabel("time (s)")
    axes[1, 1].set_ylabel("output tok/s (by finish time)")
    axes[1, 1].set_title("throughput over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _server_figure(ts: pd.DataFrame, path: Path) -> Path | None:
    wanted = {
        "sglang:num_running_reqs": "running",
        "sglang:num_queue_reqs": "queued",
        "sglang:token_usage": "KV token usage",
        "sglang:cache_hit_rate": "cache hit rate",
    }
    sub = ts[ts["metric"].isin(list(wanted))]
    if sub.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for (target, metric), grp in sub.groupby(["target", "metric"]):
        ax = axes[0] if metric in ("sglang:num_running_reqs", "sglang:num_queue_reqs") else axes[1]
        ax.plot(grp["t_s"], grp["value"], label=f"{target} {wanted[str(metric)]}")
    axes[0].set_title("running vs queued requests")
    axes[0].set_ylabel("requests")
    axes[1].set_title("KV usage and cache hit rate")
    axes[1].set_ylim(0, 1.05)
    for ax in axes:
        ax.set_xlabel("time (s)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_node_results(df: pd.DataFrame, timeseries: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``latency.png`` (CDFs, TTFT histogram, latency and throughput over time) and, with server time
    series, ``server_timeseries.png`` (running vs queued requests, KV usage, cache hit rate)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if not df.empty:
        paths.append(_latency_figure(df, out_dir / "latency.png"))
    if not timeseries.empty:
        server = _server_figure(timeseries, out_dir / "server_timeseries.png")
        if server is not None:
            paths.append(server)
    return paths
