"""The cache benefit figure: median TTFT and server latency per cache mode, by prompt length bucket and
by turn (grouped bars), with the warm-vs-cold TTFT speedup written above each group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plots import Axes, legend_below, new_figure_with_legend_row, save_figure, title_block

__all__ = ["plot_cache_benefit"]

MODE_STYLE: dict[str, tuple[str, str]] = {
    "disabled": ("tab:grey", "//"),
    "cold": ("tab:blue", ""),
    "warm": ("tab:orange", ".."),
}
MODE_LABEL: dict[str, str] = {
    "disabled": "radix cache disabled",
    "cold": "cache enabled, flushed (cold)",
    "warm": "cache enabled, pre-warmed (warm)",
}


def _bars(ax: Axes, rows: Sequence[Mapping[str, Any]], key: str, metric: str, modes: Sequence[str]) -> None:
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(modes))
    group_top = np.zeros(len(rows))
    for i, mode in enumerate(modes):
        values = [row["modes"].get(mode, {}).get(f"median_{metric}_ms") for row in rows]
        heights = np.array([v if v is not None else np.nan for v in values], dtype=np.float64)
        group_top = np.fmax(group_top, np.nan_to_num(heights))
        color, hatch = MODE_STYLE.get(mode, ("tab:green", ""))
        ax.bar(
            x + (i - (len(modes) - 1) / 2) * width,
            heights,
            width,
            color=color,
            hatch=hatch,
            edgecolor="black",
            linewidth=0.5,
            label=MODE_LABEL.get(mode, mode),
        )
    for j, row in enumerate(rows):
        speedup = row["speedups"].get("warm_vs_cold", {}).get(metric)
        if speedup is not None:
            ax.annotate(
                f"{speedup:.1f}x",
                (x[j], group_top[j]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                fontweight="bold",
            )
    ax.set_ylim(0, max(float(group_top.max()), 1e-9) * 1.15)
    ax.set_xticks(x, [str(row[key]) for row in rows], rotation=30 if key == "bucket" else 0, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_cache_benefit(result: Mapping[str, Any], path: Path, settings: str = "") -> Path:
    """Write the 2 × 2 figure (TTFT and server latency × prompt length bucket and turn) to ``path``."""
    modes = list(result["overall"]["modes"])
    fig, axes, legend_axes = new_figure_with_legend_row(2, 2, (12.0, 8.5), legend_height=0.22)
    panels = (
        ("by_bucket", "bucket", "ttft", "prompt length (tokens)", "median TTFT (ms)"),
        ("by_turn", "turn", "ttft", "turn (round of the conversation)", "median TTFT (ms)"),
        ("by_bucket", "bucket", "latency", "prompt length (tokens)", "median server latency (ms)"),
        ("by_turn", "turn", "latency", "turn (round of the conversation)", "median server latency (ms)"),
    )
    for ax, (rows_key, key, metric, xlabel, ylabel) in zip(axes, panels, strict=True):
        _bars(ax, result[rows_key], key, metric, modes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        what = "TTFT" if metric == "ttft" else "server latency"
        ax.set_title(
            f"{what} by {'prompt length' if key == 'bucket' else 'turn'} (labels: speedup warm vs cold)", fontsize=10
        )
    legend_below(legend_axes[0], *axes, title="cache mode", ncol=len(modes))
    overall = result["overall"]["speedups"]
    parts = [
        f"{name.replace('_vs_', ' vs ')}: TTFT {v['ttft']:.2f}x"
        for name, v in overall.items()
        if v.get("ttft") is not None
    ]
    title_block(
        fig,
        "Prefix cache benefit (same workload, median of completed requests)",
        "; ".join([*parts, settings]) if settings else "; ".join(parts),
    )
    return save_figure(fig, path)
