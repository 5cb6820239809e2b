"""compare_results: side-by-side tables of result files, ratios against a baseline, mean and 95%
confidence intervals over repeated runs, and a comparison plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FrameworkError

__all__ = ["COMPARE_METRICS", "ComparisonResult", "compare_results", "load_result_file", "t_quantile_975"]

# (our key, bench_serving key) of the metrics compared.
COMPARE_METRICS = (
    ("request_throughput", "request_throughput"),
    ("output_throughput", "output_throughput"),
    ("mean_ttft", "mean_ttft_ms"),
    ("p99_ttft", "p99_ttft_ms"),
    ("mean_itl", "mean_itl_ms"),
    ("p99_itl", "p99_itl_ms"),
    ("mean_tpot", "mean_tpot_ms"),
    ("median_server_latency", "median_e2e_latency_ms"),
    ("p99_server_latency", "p99_e2e_latency_ms"),
    ("cache_hit_rate", "cache_hit_rate"),
)
HIGHER_IS_BETTER = {"request_throughput", "output_throughput", "cache_hit_rate"}
_T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student-t quantile for ``dof`` degrees of freedom (table, interpolated)."""
    if dof < 1:
        return math.nan
    keys = sorted(_T975)
    if dof >= keys[-1]:
        return 1.96
    lo = max(k for k in keys if k <= dof)
    hi = min(k for k in keys if k >= dof)
    if lo == hi:
        return _T975[lo]
    return _T975[lo] + (_T975[hi] - _T975[lo]) * (dof - lo) / (hi - lo)


def load_result_file(path: str | Path) -> dict[str, Any]:
    """The last JSON line of a result file (ours, or a bench_serving ``--output-file``)."""
    p = Path(path)
    lines = [ln for ln in p.read_text().splitlines() if ln.strip()] if p.is_file() else []
    if not lines:
        raise FrameworkError(f"{p}: missing or empty; pass a summary.json / --output-file of a run")
    try:
        data = json.loads(lines[-1])
    except ValueError as exc:
        raise FrameworkError(f"{p}: last line is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FrameworkError(f"{p}: expected a JSON object")
    return data


def _value(data: dict[str, Any], ours: str, theirs: str) -> float:
    v = data.get(ours, data.get(theirs))
    return float(v) if isinstance(v, (int, float)) else math.nan


@dataclass
class ComparisonResult:
    """``table``: rows = labels, columns = metric means (+ ``<metric>_ci95`` and ``<metric>_ratio``)."""

    table: pd.DataFrame
    runs: pd.DataFrame
    baseline: str

    def to_text(self) -> str:
        """Aligned plain text: each metric's mean (± 95% CI with repeated runs) and ratio vs the baseline."""
        rows = []
        for label, row in self.table.iterrows():
            out: dict[str, str] = {"label": str(label), "runs": str(int(row["runs"]))}
            for metric, _ in COMPARE_METRICS:
                v, ci, r = row[metric], row[f"{metric}_ci95"], row[f"{metric}_ratio"]
                cell = "n/a" if pd.isna(v) else f"{v:,.2f}" + ("" if pd.isna(ci) else f"±{ci:,.2f}")
                out[metric] = cell + ("" if pd.isna(r) else f" (x{r:.2f})")
            rows.append(out)
        return f"baseline: {self.baseline}\n" + str(pd.DataFrame(rows).set_index("label").to_string())

    def to_markdown(self) -> str:
        """A Markdown table (no extra dependency)."""
        cols = ["label", *self.table.columns]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for label, row in self.table.iterrows():
            cells = [str(label)] + ["n/a" if pd.isna(v) else f"{v:,.3f}" for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def save_plot(self, path: str | Path) -> Path:
        """Bars of throughput and latency per label (with CI error bars)."""
        from .compare_plots import plot_comparison

        return plot_comparison(self.table, Path(path))


def compare_results(
    files: Sequence[str | Path], labels: Sequence[str] | None = None, baseline: int = 0
) -> ComparisonResult:
    """Compare result files. Files sharing a label are repeated runs: mean and 95% CI."""
    if not files:
        raise FrameworkError("compare_results: give at least one result file")
    if labels is not None and len(labels) != len(files):
        raise FrameworkError(f"labels: {len(labels)} labels for {len(files)} files; give one per file")
    rows = []
    for i, f in enumerate(files):
        data = load_result_file(f)
        label = labels[i] if labels else str(data.get("tag") or Path(f).stem)
        rows.append({"label": label, "file": str(f), **{o: _value(data, o, t) for o, t in COMPARE_METRICS}})
    runs = pd.DataFrame(rows)
    order = list(dict.fromkeys(runs["label"]))
    if not 0 <= baseline < len(files):
        raise FrameworkError(f"baseline: index {baseline} out of range for {len(files)} files")
    base_label = str(runs.iloc[baseline]["label"])
    table = pd.DataFrame(index=pd.Index(order, name="label"))
    grouped = runs.groupby("label", sort=False)
    table["runs"] = grouped.size()
    for metric, _ in COMPARE_METRICS:
        mean = grouped[metric].mean()
        std = grouped[metric].std(ddof=1)
        n = grouped[metric].count()
        table[metric] = mean
        table[f"{metric}_ci95"] = [
            t_quantile_975(int(k) - 1) * s / math.sqrt(k) if k > 1 else math.nan for s, k in zip(std, n, strict=True)
        ]
        base = mean.get(base_label, math.nan)
        table[f"{metric}_ratio"] = mean / base if base else math.nan
    return ComparisonResult(table, runs, base_label)
