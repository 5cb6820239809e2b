"""The SMG policy study figure: one panel per metric (cache hit rate, TTFT p50/p99, throughput, load
imbalance CV), a bar per policy with its value written on it, one bar colour per workload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plots import legend_outside, new_figure, save_figure, title_block

__all__ = ["PANELS", "plot_policy_study"]

# (column, panel title, y label, value label format)
PANELS: tuple[tuple[str, str, str, str], ...] = (
    ("cache_hit_rate", "prefix cache hit rate (Σ cached / Σ prompt tokens)", "hit rate (0–1)", "{:.0%}"),
    ("p50_ttft", "TTFT p50", "TTFT (ms)", "{:,.1f}"),
    ("p99_ttft", "TTFT p99", "TTFT (ms)", "{:,.1f}"),
    ("request_throughput", "request throughput", "requests/s", "{:,.2f}"),
    ("load_imbalance_cv", "load imbalance: CV of requests per worker (0 = even)", "CV (std / mean)", "{:.2f}"),
)


def _tick_labels(table: pd.DataFrame, policies: list[str]) -> list[str]:
    """Policy names; a policy that was sent routing keys says which."""
    if "routing_key" not in table:
        return policies
    keys = table["routing_key"].groupby(level="policy").first()
    return [p if keys.get(p, "none") in ("none", None) else f"{p}\n(key: {keys[p]})" for p in policies]


def plot_policy_study(table: pd.DataFrame, path: Path, settings: str = "") -> Path:
    """Bars of ``table`` (index: workload, policy) per metric; written to ``path``. ``settings`` (e.g.
    :func:`.report.common_settings_line` of the arms) goes under the title."""
    workloads = list(dict.fromkeys(table.index.get_level_values("workload")))
    policies = list(dict.fromkeys(table.index.get_level_values("policy")))
    fig, axes = new_figure(len(PANELS), 1, figsize=(max(9.0, 1.1 * len(policies) + 2.0), 2.7 * len(PANELS)))
    x = np.arange(len(policies))
    width = 0.8 / max(1, len(workloads))
    ticks = _tick_labels(table, policies)
    for n, (ax, (column, title, ylabel, fmt)) in enumerate(zip(axes, PANELS, strict=True)):
        for k, workload in enumerate(workloads):
            rows = table.xs(workload, level="workload")
            raw = [rows[column].get(p) if column in rows else None for p in policies]
            values = np.array([np.nan if v is None else float(v) for v in raw], dtype=float)
            bars = ax.bar(x + k * width - 0.4 + width / 2, np.nan_to_num(values), width, label=workload)
            labels = ["n/a" if np.isnan(v) else fmt.format(v) for v in values]
            ax.bar_label(bars, labels=labels, fontsize=7, padding=1)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_xlabel("SMG routing policy", fontsize=8)
        ax.set_xticks(x, ticks, fontsize=8)
        ax.margins(y=0.18)  # room for the value labels
        ax.set_ylim(bottom=0)
        if column == "cache_hit_rate":
            ax.set_ylim(0, 1.1)
        ax.grid(axis="y", alpha=0.3)
        if n == 0:
            legend_outside(ax, "workload")
    what = f"{len(policies)} policies × {len(workloads)} workload(s), same seeded requests per workload"
    title_block(fig, "SMG policy study", f"{what}   {settings}" if settings else what)
    return save_figure(fig, path)
