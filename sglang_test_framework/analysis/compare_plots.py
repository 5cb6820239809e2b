"""Plot of a comparison table: throughput and latency bars per label, 95% CI error bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_comparison"]


def plot_comparison(table: pd.DataFrame, path: Path) -> Path:
    """Write the comparison PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [str(x) for x in table.index]
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        ("output_throughput", "output tok/s"),
        ("mean_ttft", "mean TTFT (ms)"),
        ("p99_server_latency", "P99 latency (ms)"),
    )
    for ax, (metric, title) in zip(axes, panels, strict=True):
        err = table.get(f"{metric}_ci95")
        ax.bar(x, table[metric].astype(float), yerr=None if err is None else err.fillna(0).astype(float), capsize=4)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ratios = table.get(f"{metric}_ratio")
        if ratios is not None:
            for xi, (v, r) in enumerate(zip(table[metric], ratios, strict=True)):
                if pd.notna(v) and pd.notna(r):
                    ax.annotate(f"×{r:.2f}", (xi, v), ha="center", va="bottom", fontsize=7)
    fig.suptitle("comparison (ratios vs baseline)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
