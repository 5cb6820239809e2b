"""compare_results: result files side by side, ratios and speedups against a baseline, mean and 95%
confidence interval over repeated runs (files sharing a label), and a comparison plot.

A result file is one JSON object on one line (our ``summary.json`` / ``--output-file``); a
bench_serving ``--output-file`` (JSONL, one line appended per run) is read by its last line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FrameworkError
from .report import common_settings_line, format_table
from .stats import mean_ci95, t_quantile_975

__all__ = [
    "COMPARE_METRICS",
    "CompareMetric",
    "ComparisonResult",
    "compare_results",
    "load_result_file",
    "t_quantile_975",
]


@dataclass(frozen=True)
class CompareMetric:
    """A compared metric: our summary key, bench_serving's key for it, and its better direction."""

    key: str
    bench_key: str
    higher_is_better: bool


COMPARE_METRICS: tuple[CompareMetric, ...] = (
    CompareMetric("request_throughput", "request_throughput", True),
    CompareMetric("output_throughput", "output_throughput", True),
    CompareMetric("total_throughput", "total_throughput", True),
    CompareMetric("mean_ttft", "mean_ttft_ms", False),
    CompareMetric("median_ttft", "median_ttft_ms", False),
    CompareMetric("p99_ttft", "p99_ttft_ms", False),
    CompareMetric("mean_itl", "mean_itl_ms", False),
    CompareMetric("p99_itl", "p99_itl_ms", False),
    CompareMetric("mean_tpot", "mean_tpot_ms", False),
    CompareMetric("median_server_latency", "median_e2e_latency_ms", False),
    CompareMetric("p99_server_latency", "p99_e2e_latency_ms", False),
    CompareMetric("concurrency", "concurrency", True),
    CompareMetric("cache_hit_rate", "cache_hit_rate", True),
)


def load_result_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of a result file: the whole file if it is one object (ours, even
    pretty-printed), else its last non-empty line (a bench_serving JSONL ``--output-file``).

    Raises:
        FrameworkError: the file is missing, empty, or holds no JSON object.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.is_file() else ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise FrameworkError(f"{p}: missing or empty; pass a summary.json / --output-file of a run")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = json.loads(lines[-1])
        except ValueError as exc:
            raise FrameworkError(f"{p}: neither the file nor its last line is JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FrameworkError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


def _lookup(data: Mapping[str, Any], *keys: str) -> Any:
    """First of ``keys`` found at the top level, then in ``context`` / ``server_info``."""
    for scope in (data, data.get("context") or {}, data.get("server_info") or {}):
        if isinstance(scope, Mapping):
            for key in keys:
                if scope.get(key) is not None:
                    return scope[key]
    return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@dataclass
class ComparisonResult:
    """Outcome of :func:`compare_results`.

    Attributes:
        table: One row per label (in first-seen order, index ``label``): ``runs``; the sweep variable
            when given; per metric ``<m>`` (mean over runs), ``<m>_ci95`` (95% CI half-width, NaN for a
            single run), ``<m>_ratio`` (mean / baseline mean) and ``<m>_speedup`` (ratio for
            higher-is-better metrics, baseline / mean for latencies: > 1 always means better).
        runs: One row per file: ``label``, ``file`` and every metric's value.
        baseline: The baseline's label.
        sweep_variable: The numeric run setting given to :func:`compare_results`, if any.
        files: One entry per file, in order: ``label``, ``file``, ``status`` (the run's status, None in
            bench_serving files), ``failed``, ``server_exits`` and ``context`` (the run's settings).
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    baseline: str
    sweep_variable: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)

    def settings(self) -> str:
        """The settings the compared runs share, then those that differ (for title blocks)."""
        return common_settings_line([f["context"] for f in self.files])

    def _cell(self, label: Any, metric: str) -> str:
        row = self.table.loc[label]
        value, ci, ratio = row[metric], row[f"{metric}_ci95"], row[f"{metric}_ratio"]
        if pd.isna(value):
            return "n/a"
        text = f"{value:,.2f}" + ("" if pd.isna(ci) else f" ±{ci:,.2f}")
        return text + ("" if pd.isna(ratio) else f" (x{ratio:.2f})")

    def text_rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`to_text`: ``metric`` then one ``mean ±CI (xratio)`` cell per label."""
        labels = list(self.table.index)

        def row(name: str, cell: Any) -> dict[str, Any]:
            return {"metric": name, **{str(lb): cell(lb) for lb in labels}}

        rows = [row("runs", lambda lb: int(self.table["runs"][lb]))]
        if self.sweep_variable:
            variable = self.sweep_variable
            rows.append(row(variable, lambda lb: self.table[variable][lb]))
        rows += [row(m.key, lambda lb, key=m.key: self._cell(lb, key)) for m in COMPARE_METRICS]
        return rows

    def to_text(self) -> str:
        """Aligned plain text: one row per metric, one column per label with ``mean ±CI (xratio)``."""
        header = f"baseline: {self.baseline}   (x = ratio of means vs the baseline; ± = 95% CI over repeated runs)"
        return header + "\n" + format_table(self.text_rows(), ["metric", *map(str, self.table.index)])

    def to_markdown(self) -> str:
        """A Markdown table (rows = labels; every column of :attr:`table`)."""
        cols = ["label", *map(str, self.table.columns)]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for label, row in self.table.iterrows():
            cells = [str(label)] + ["n/a" if pd.isna(v) else f"{v:,.3f}" for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def save_plot(self, path: str | Path) -> Path:
        """Write the comparison PNG (:func:`.plots.plot_comparison`) and return its path."""
        from .compare_plots import plot_comparison  # matplotlib only when a plot is asked for

        return plot_comparison(self.table, Path(path), self.sweep_variable, self.settings())


def _file_info(label: str, path: str | Path, data: Mapping[str, Any]) -> dict[str, Any]:
    context = data.get("context")
    if not isinstance(context, Mapping):  # a bench_serving line: its settings are top-level keys
        context = {k: data.get(k) for k in ("backend", "request_rate", "max_concurrency", "dataset_name")}
    exits = data.get("server_exits")
    return {
        "label": label,
        "file": str(path),
        "status": data.get("status"),
        "failed": data.get("failed"),
        "server_exits": list(exits) if isinstance(exits, list) else [],
        "context": dict(context),
    }


def _read_runs(
    files: Sequence[str | Path], labels: Sequence[str] | None, sweep_variable: str | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    rows, infos = [], []
    for i, f in enumerate(files):
        data = load_result_file(f)
        label = labels[i] if labels else str(data.get("tag") or Path(f).stem)
        infos.append(_file_info(label, f, data))
        row: dict[str, Any] = {"label": label, "file": str(f)}
        if sweep_variable:
            row[sweep_variable] = _number(_lookup(data, sweep_variable))
        row.update({m.key: _number(_lookup(data, m.key, m.bench_key)) for m in COMPARE_METRICS})
        rows.append(row)
    return pd.DataFrame(rows), infos


def _baseline_label(runs: pd.DataFrame, baseline: int | str) -> str:
    if isinstance(baseline, str):
        if baseline not in set(runs["label"]):
            raise FrameworkError(f"baseline: no run labelled {baseline!r}; labels: {sorted(set(runs['label']))}")
        return baseline
    if not 0 <= baseline < len(runs):
        raise FrameworkError(f"baseline: index {baseline} out of range for {len(runs)} files")
    return str(runs.iloc[baseline]["label"])


def _aggregate(runs: pd.DataFrame, base: str, sweep_variable: str | None) -> pd.DataFrame:
    order = list(dict.fromkeys(runs["label"]))
    groups = {label: runs[runs["label"] == label] for label in order}
    table = pd.DataFrame(index=pd.Index(order, name="label"))
    table["runs"] = [len(groups[label]) for label in order]
    if sweep_variable:
        table[sweep_variable] = [groups[label][sweep_variable].mean() for label in order]
    for m in COMPARE_METRICS:
        stats = [mean_ci95(groups[label][m.key].tolist()) for label in order]
        table[m.key] = [mean for mean, _ in stats]
        table[f"{m.key}_ci95"] = [ci for _, ci in stats]
        base_value = float(table[m.key][base])
        usable = math.isfinite(base_value) and base_value != 0
        table[f"{m.key}_ratio"] = table[m.key] / base_value if usable else math.nan
        speedup = table[f"{m.key}_ratio"] if m.higher_is_better else 1.0 / table[f"{m.key}_ratio"]
        table[f"{m.key}_speedup"] = speedup.replace([math.inf, -math.inf], math.nan)
    return table


def compare_results(
    files: Sequence[str | Path],
    labels: Sequence[str] | None = None,
    baseline: int | str = 0,
    sweep_variable: str | None = None,
) -> ComparisonResult:
    """Compare result files side by side.

    Args:
        files: Our ``summary.json`` / ``--output-file`` files or bench_serving JSONL output files.
        labels: One label per file (default: the file's ``tag``, else its name without suffix). Files
            sharing a label are repeated runs: their mean and 95% CI (Student t) are reported.
        baseline: Index into ``files`` (or a label) of the run the ratios are taken against.
        sweep_variable: A numeric run setting to carry into the table and plot against, e.g.
            ``request_rate`` or ``max_running_requests`` (read from the file's top level, then its
            ``context`` or ``server_info``).

    Raises:
        FrameworkError: no files, a file that cannot be read, labels of the wrong length, or an
            unknown baseline.
    """
    if not files:
        raise FrameworkError("compare_results: give at least one result file")
    if labels is not None and len(labels) != len(files):
        raise FrameworkError(f"labels: {len(labels)} labels for {len(files)} files; give one per file")
    runs, infos = _read_runs(files, labels, sweep_variable)
    base = _baseline_label(runs, baseline)
    return ComparisonResult(_aggregate(runs, base, sweep_variable), runs, base, sweep_variable, infos)
