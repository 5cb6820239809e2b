"""The saturation sweep's figure: the throughput–latency curve with the knee marked, and achieved against
offered rate (where the server stops keeping up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plots import Axes, legend_below, new_figure_with_legend_row, save_figure, title_block

__all__ = ["plot_saturation"]

# (table column, legend name, line style, marker)
LATENCY_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("median_server_latency", "P50 server latency", "-", "o"),
    ("p99_server_latency", "P99 server latency", "--", "s"),
    ("mean_ttft", "mean TTFT", ":", "^"),
)


def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)


def _mark(ax: Axes, x: np.ndarray, y: np.ndarray, over: np.ndarray, knee: np.ndarray) -> None:
    """Red crosses on over-saturated steps, a star on the knee."""
    if over.any():
        ax.plot(x[over], y[over], "x", color="tab:red", markersize=11, mew=2, label="over-saturated step")
    if knee.any():
        ax.plot(x[knee], y[knee], "*", color="gold", markeredgecolor="black", markersize=18, label="knee", zorder=5)


def _latency_panel(ax: Axes, table: pd.DataFrame, over: np.ndarray, knee: np.ndarray, capacity: float) -> None:
    x = _numeric(table, "achieved_rate")
    for column, name, style, marker in LATENCY_SERIES:
        y = _numeric(table, column)
        ax.plot(x, y, linestyle=style, marker=marker, label=name)
        if column == "p99_server_latency":
            _mark(ax, x, y, over, knee)
    if knee.any():
        k = int(np.flatnonzero(knee)[0])
        y = _numeric(table, "p99_server_latency")[k]
        ax.annotate(f"knee: {x[k]:.2f} req/s", (x[k], y), xytext=(8, 12), textcoords="offset points", fontsize=9)
    if capacity > 0:
        ax.axvline(
            capacity, color="grey", linestyle="-.", linewidth=1.2, label=f"burst throughput {capacity:.2f} req/s"
        )
    ax.set_xlabel("achieved rate (req/s: successful completions in the window)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("latency vs throughput", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _tracking_panel(ax: Axes, table: pd.DataFrame, over: np.ndarray, knee: np.ndarray, capacity: float) -> None:
    offered, achieved = _numeric(table, "offered_rate"), _numeric(table, "achieved_rate")
    ax.plot(offered, achieved, "o-", label="achieved rate")
    top = float(np.nanmax(np.concatenate([offered, achieved, [capacity]]))) * 1.05
    ax.plot([0, top], [0, top], ":", color="black", linewidth=1, label="achieved = offered")
    if capacity > 0:
        ax.axhline(
            capacity, color="grey", linestyle="-.", linewidth=1.2, label=f"burst throughput {capacity:.2f} req/s"
        )
    _mark(ax, offered, achieved, over, knee)
    ax.set_xlabel("offered rate (req/s: requests scheduled in the window)")
    ax.set_ylabel("achieved rate (req/s)")
    ax.set_title("does the server keep up with the offered rate?", fontsize=10)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)


def plot_saturation(table: pd.DataFrame, capacity_rate: float, path: Path, settings: str = "") -> Path:
    """Write the saturation sweep's figure to ``path`` and return it.

    Args:
        table: The per-step table (``scenarios.saturation.STEP_COLUMNS``: ``offered_rate``,
            ``achieved_rate``, latencies in ms, ``saturated``, ``knee``).
        capacity_rate: The burst's throughput (req/s), drawn as a reference line.
        path: The PNG to write.
        settings: The sweep's settings for the title block.
    """
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.8), legend_height=0.22)
    over = np.array([value is True for value in table["saturated"]], dtype=np.bool_)
    knee = np.array([value is True for value in table["knee"]], dtype=np.bool_)
    _latency_panel(axes[0], table, over, knee, capacity_rate)
    _tracking_panel(axes[1], table, over, knee, capacity_rate)
    for ax, legend_ax in zip(axes, legends, strict=True):
        legend_below(legend_ax, ax, ncol=3)
    title_block(fig, "Saturation sweep: throughput vs latency (knee = highest achieved rate that keeps up)", settings)
    return save_figure(fig, path)
