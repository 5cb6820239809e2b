"""Sweep plots: throughput-vs-latency curves and latency percentile bars per grid point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .plots import legend_below, legend_outside, new_figure, new_figure_with_legend_row, save_figure, title_block

__all__ = ["plot_sweep"]

# (sweep table column, legend name, hatch)
PERCENTILE_BARS: tuple[tuple[str, str, str], ...] = (
    ("p50_server_latency", "P50 server latency", ""),
    ("p99_server_latency", "P99 server latency", "//"),
    ("p99_ttft", "P99 TTFT", ".."),
)


def _curve_groups(table: pd.DataFrame, keys: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """Group points into curves: one curve per combination of the non-rate grid keys."""
    cols = [k.lstrip("-") for k in keys]
    others = [c for c in cols if c != "request_rate"]
    if not others:
        return [("all points", table)]
    return [
        (",".join(f"{c}={v}" for c, v in zip(others, name if isinstance(name, tuple) else (name,), strict=True)), grp)
        for name, grp in table.groupby(others, sort=True)
    ]


def _throughput_latency(table: pd.DataFrame, keys: Sequence[str], settings: str, path: Path) -> Path:
    fig, axes, legends = new_figure_with_legend_row(1, 2, (15, 5.6), legend_height=0.2)
    markers = ("o-", "s--", "^:", "D-.")
    columns = ("output_throughput", "p99_server_latency", "mean_ttft")
    numeric = table.assign(**{c: pd.to_numeric(table[c], errors="coerce") for c in columns})
    numeric = numeric.dropna(subset=["output_throughput"])
    for k, (label, grp) in enumerate(_curve_groups(numeric, keys)):
        grp = grp.sort_values("output_throughput")
        axes[0].plot(grp["output_throughput"], grp["p99_server_latency"], markers[k % 4], label=label)
        axes[1].plot(grp["output_throughput"], grp["mean_ttft"], markers[k % 4], label=label)
        for _, row in grp.iterrows():
            for ax, col in ((axes[0], "p99_server_latency"), (axes[1], "mean_ttft")):
                ax.annotate(
                    str(row["point"]),
                    (row["output_throughput"], row[col]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    axes[0].set_ylabel("P99 server latency (ms)")
    axes[0].set_title("P99 server latency vs throughput", fontsize=10)
    axes[1].set_ylabel("mean TTFT (ms)")
    axes[1].set_title("mean TTFT vs throughput", fontsize=10)
    for ax, legend_ax in zip(axes, legends, strict=True):
        ax.set_xlabel("output throughput (tok/s)")
        ax.margins(x=0.15, y=0.15)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        legend_below(legend_ax, ax, title="curve (points labelled by grid point)", ncol=3)
    title_block(fig, "Sweep: throughput vs latency (one marker per grid point)", settings)
    return save_figure(fig, path)


def _percentiles(table: pd.DataFrame, settings: str, path: Path) -> Path:
    fig, (ax,) = new_figure(1, 1, (max(9.0, 1.1 * len(table) + 5), 5.0))
    x = np.arange(len(table))
    bars = [(col, name, hatch) for col, name, hatch in PERCENTILE_BARS if col in table]
    width = 0.8 / max(1, len(bars))
    for k, (col, name, hatch) in enumerate(bars):
        xs = x + (k - (len(bars) - 1) / 2) * width
        ax.bar(
            xs,
            pd.to_numeric(table[col], errors="coerce").fillna(0.0),
            width,
            label=name,
            hatch=hatch,
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_xticks(x, table["point"].astype(str), rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("grid point")
    ax.set_ylabel("latency (ms)")
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax)
    title_block(fig, "Sweep: latency percentiles per grid point", settings)
    return save_figure(fig, path)


def plot_sweep(table: pd.DataFrame, keys: Sequence[str], out_dir: Path, settings: str = "") -> list[Path]:
    """Write ``throughput_latency.png`` (P99 server latency and mean TTFT against output throughput,
    one curve per combination of the non-rate grid keys) and ``latency_percentiles.png`` (P50/P99
    server latency and P99 TTFT per point); return their paths.

    Args:
        table: The sweep table (one row per point: ``point``, the grid keys, the summary columns).
        keys: The grid keys (raw flags keep their leading ``--``).
        out_dir: Where the PNGs go.
        settings: The points' shared settings for the title block (:func:`.report.common_settings_line`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        _throughput_latency(table, keys, settings, out_dir / "throughput_latency.png"),
        _percentiles(table, settings, out_dir / "latency_percentiles.png"),
    ]
