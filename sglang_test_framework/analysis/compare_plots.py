"""The comparison figure of :meth:`.compare.ComparisonResult.save_plot` (``sglang-test compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .plots import Axes, legend_outside, new_figure, save_figure, title_block

__all__ = ["plot_comparison"]


def _bars(ax: Axes, table: pd.DataFrame, metrics: Sequence[tuple[str, str]], title: str, ylabel: str) -> None:
    labels = [str(x) for x in table.index]
    x = np.arange(len(labels))
    present = [(m, name) for m, name in metrics if m in table]
    width = 0.8 / max(1, len(present))
    hatches = ("", "//", "..", "xx")
    for k, (metric, name) in enumerate(present):
        values = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)
        err_col = table.get(f"{metric}_ci95")
        err = None if err_col is None else pd.to_numeric(err_col, errors="coerce").fillna(0).to_numpy(dtype=float)
        xs = x + (k - (len(present) - 1) / 2) * width
        ax.bar(
            xs,
            np.nan_to_num(values),
            width,
            yerr=err,
            capsize=3,
            label=name,
            hatch=hatches[k % len(hatches)],
            edgecolor="black",
            linewidth=0.5,
        )
        ratios = table.get(f"{metric}_ratio")
        if ratios is not None:
            for xi, v, r in zip(xs, values, pd.to_numeric(ratios, errors="coerce"), strict=True):
                if np.isfinite(v) and pd.notna(r):
                    ax.annotate(
                        f"×{r:.2f}",
                        (xi, v),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        xytext=(0, 2),
                        textcoords="offset points",
                    )
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("run label")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    if len(present) > 1:
        legend_outside(ax)


def _sweep_curve(ax: Axes, table: pd.DataFrame, sweep_variable: str) -> None:
    data = table.assign(_x=pd.to_numeric(table[sweep_variable], errors="coerce")).dropna(subset=["_x"])
    data = data.sort_values("_x")
    for k, (metric, name) in enumerate((("median_server_latency", "P50"), ("p99_server_latency", "P99"))):
        if metric in data:
            ax.plot(data["output_throughput"], data[metric], "o-" if k == 0 else "s--", label=f"{name} server latency")
    for _, row in data.iterrows():
        ax.annotate(
            f"{sweep_variable}={row['_x']:g}",
            (row["output_throughput"], row.get("p99_server_latency", 0.0)),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("output throughput (tok/s)")
    ax.set_ylabel("server latency (ms)")
    ax.set_title(f"throughput vs latency by {sweep_variable}", fontsize=10)
    ax.grid(alpha=0.3)
    legend_outside(ax)


def plot_comparison(table: pd.DataFrame, out_path: Path, sweep_variable: str | None = None, settings: str = "") -> Path:
    """Write a comparison PNG and return its path.

    Args:
        table: One row per run label (index) with metric columns such as ``request_throughput``,
            ``output_throughput``, ``median_server_latency``, ``p99_server_latency`` and optionally
            ``<metric>_ci95`` (error bars) and ``<metric>_ratio`` (annotated ×ratio vs the baseline).
        out_path: PNG path.
        sweep_variable: A numeric column of ``table`` (e.g. ``request_rate``): adds a
            throughput-vs-latency curve with the points ordered by it.
        settings: The runs' shared settings for the title block (:func:`.report.common_settings_line`).
    """
    curve = sweep_variable is not None and sweep_variable in table and "output_throughput" in table
    fig, axes = new_figure(1, 4 if curve else 3, (22 if curve else 17, 5.0))
    _bars(axes[0], table, (("request_throughput", "req/s"),), "request throughput", "requests/s")
    _bars(axes[1], table, (("output_throughput", "tok/s"),), "output token throughput", "output tokens/s")
    _bars(
        axes[2],
        table,
        (("median_server_latency", "P50"), ("p99_server_latency", "P99")),
        "server latency",
        "server latency (ms)",
    )
    if curve and sweep_variable is not None:
        _sweep_curve(axes[3], table, sweep_variable)
    title_block(fig, "Comparison (×ratio vs the baseline; error bars: 95% CI over repeated runs)", settings)
    return save_figure(fig, Path(out_path))
