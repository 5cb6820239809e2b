"""Sweep plots: throughput-vs-latency curves and latency percentile bars per grid point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .plots import new_figure, save_figure

__all__ = ["plot_sweep"]


def _curve_groups(table: pd.DataFrame, keys: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """Group points into curves: one curve per combination of the non-rate grid keys."""
    cols = [k.lstrip("-") for k in keys]
    others = [c for c in cols if c != "request_rate"]
    if not others:
        return [("all", table)]
    return [
        (",".join(f"{c}={v}" for c, v in zip(others, name if isinstance(name, tuple) else (name,), strict=True)), grp)
        for name, grp in table.groupby(others, sort=True)
    ]


def plot_sweep(table: pd.DataFrame, keys: Sequence[str], out_dir: Path) -> list[Path]:
    """Write ``throughput_latency.png`` and ``latency_percentiles.png``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    fig, axes = new_figure(1, 2, (12, 4.5))
    for label, grp in _curve_groups(table, keys):
        grp = grp.sort_values("output_throughput")
        axes[0].plot(grp["output_throughput"], grp["p99_server_latency"], "o-", label=label)
        axes[1].plot(grp["output_throughput"], grp["mean_ttft"], "o-", label=label)
    axes[0].set_ylabel("P99 server latency (ms)")
    axes[1].set_ylabel("mean TTFT (ms)")
    for ax in axes:
        ax.set_xlabel("output throughput (tok/s)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("throughput vs latency")
    paths.append(save_figure(fig, out_dir / "throughput_latency.png"))

    fig, (ax,) = new_figure(1, 1, (max(6.0, 0.9 * len(table) + 2), 4.5))
    x = np.arange(len(table))
    cols = [c for c in ("p50_server_latency", "p99_server_latency", "p99_ttft") if c in table]
    width = 0.8 / max(1, len(cols))
    for k, col in enumerate(cols):
        ax.bar(x + k * width, table[col].astype(float), width, label=col)
    ax.set_xticks(x + 0.4 - width / 2, table["point"].astype(str), rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("ms")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("latency percentiles per sweep point")
    paths.append(save_figure(fig, out_dir / "latency_percentiles.png"))
    return paths
