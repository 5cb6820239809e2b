"""compare_results: result files side by side, speedups against a baseline with their significance,
mean and 95% confidence interval over repeated runs, and a comparison plot.

A result file is one JSON object on one line (our ``summary.json`` / ``--output-file``); a
bench_serving ``--output-file`` (JSONL, one line appended per run) is read by its last line. Repeated
runs form one group: files sharing a label, or the ``rep-*`` runs of a run made with ``repeats`` (its
directory or its combined ``summary.json`` is expanded into them). Significance of each difference from
the baseline: Welch's two-sample t-test over the groups' runs (two-sided; significant at 95% when
p < 0.05). Rates and shares (``cache_hit_rate``, ``success_rate``, ``slo_attainment``) are compared
by their difference in percentage points, not by a ratio.
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
from .stats import SIGNIFICANCE_LEVEL, mean_ci95, t_quantile_975, welch_t_test

__all__ = [
    "COMPARE_METRICS",
    "REPEAT_DIR_PREFIX",
    "CompareMetric",
    "ComparisonResult",
    "ResultInput",
    "compare_results",
    "expand_result_inputs",
    "load_result_file",
    "t_quantile_975",
]

REPEAT_DIR_PREFIX = "rep-"
"""The runs of a repeated run are ``<output_dir>/rep-0``, ``rep-1``, …"""
SIGNIFICANCE_TEST = "Welch's t-test (two-sided)"


@dataclass(frozen=True)
class CompareMetric:
    """A compared metric: our summary key, bench_serving's key for it, and its better direction.

    ``share`` marks a 0–1 rate (compared by the difference in percentage points: a ratio of rates
    reads as a speedup it is not); ``optional`` metrics are shown only when some run reports them."""

    key: str
    bench_key: str
    higher_is_better: bool
    share: bool = False
    optional: bool = False


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
    CompareMetric("cache_hit_rate", "cache_hit_rate", True, share=True),
    CompareMetric("success_rate", "success_rate", True, share=True),
    CompareMetric("slo_attainment", "slo_attainment", True, share=True, optional=True),
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


@dataclass(frozen=True)
class ResultInput:
    """One result file to compare and the label of the group it belongs to (None: decided by the file)."""

    path: Path
    group: str | None = None


def _repeat_files(directory: Path) -> list[Path]:
    """``rep-<k>/summary.json`` of a repeated run's directory, in repeat order."""
    reps = [
        p
        for p in directory.glob(f"{REPEAT_DIR_PREFIX}*/summary.json")
        if p.parent.name[len(REPEAT_DIR_PREFIX) :].isdigit()
    ]
    return sorted(reps, key=lambda p: int(p.parent.name[len(REPEAT_DIR_PREFIX) :]))


def _group_label(data: Mapping[str, Any], directory: Path) -> str:
    return str(data.get("tag") or directory.name)


def _expand_one(path: Path) -> list[ResultInput]:
    if path.is_dir():
        reps = _repeat_files(path)
        if reps:
            summary = path / "summary.json"
            data = load_result_file(summary) if summary.is_file() else {}
            label = _group_label(data, path)
            return [ResultInput(rep, label) for rep in reps]
        if not (path / "summary.json").is_file():
            raise FrameworkError(
                f"{path}: a directory without summary.json or rep-*/summary.json; pass a run's directory"
            )
        path = path / "summary.json"
    data = load_result_file(path)
    listed = data.get("repeat_dirs")
    if isinstance(listed, list) and listed:  # the combined summary of a repeated run: compare its repeats
        reps = []
        for entry in listed:
            rep = Path(str(entry)) / "summary.json"
            reps.append(rep if rep.is_file() else path.parent / Path(str(entry)).name / "summary.json")
        missing = [str(r) for r in reps if not r.is_file()]
        if missing:
            raise FrameworkError(f"{path}: the repeats it lists are missing ({', '.join(missing)})")
        return [ResultInput(rep, _group_label(data, path.parent)) for rep in reps]
    return [ResultInput(path)]


def expand_result_inputs(paths: Sequence[str | Path]) -> list[list[ResultInput]]:
    """Per input path, the result files it stands for: a file itself; a run directory its
    ``summary.json``; a repeated run (its directory, or the combined ``summary.json`` listing
    ``repeat_dirs``) each repeat's ``summary.json``, grouped under the run's tag or directory name.

    Raises:
        FrameworkError: a path that is neither a result file nor a run directory.
    """
    return [_expand_one(Path(p)) for p in paths]


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


def _significance_mark(p_value: float) -> str:
    return " *" if p_value < SIGNIFICANCE_LEVEL else ""


@dataclass
class ComparisonResult:
    """Outcome of :func:`compare_results`.

    Attributes:
        table: One row per label (in first-seen order, index ``label``): ``runs``; the sweep variable
            when given; per metric ``<m>`` (mean over runs), ``<m>_ci95`` (95% CI half-width, NaN for a
            single run), ``<m>_ratio`` (mean / baseline mean) and ``<m>_speedup`` (ratio for
            higher-is-better metrics, baseline / mean for latencies: > 1 always means better) — for
            rates and shares (:attr:`CompareMetric.share`) these two are NaN and ``<m>_diff_pp`` (the
            difference from the baseline in percentage points) is given instead; ``<m>_p_value``
            (Welch's t-test of the label's runs against the baseline's, two-sided; NaN for the baseline
            and when either side has fewer than 2 runs) and ``<m>_significant`` (p < 0.05: 1.0 / 0.0,
            NaN without a test).
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

    def metrics(self) -> list[CompareMetric]:
        """The compared metrics shown: every one except optional metrics no run reports."""
        return [m for m in COMPARE_METRICS if not m.optional or self.table[m.key].notna().any()]

    def _cell(self, label: Any, metric: CompareMetric) -> str:
        row = self.table.loc[label]
        value, ci = row[metric.key], row[f"{metric.key}_ci95"]
        if pd.isna(value):
            return "n/a"
        if metric.share:
            text = f"{100 * value:.2f}%" + ("" if pd.isna(ci) else f" ±{100 * ci:.2f}")
            diff = row[f"{metric.key}_diff_pp"]
            return text + ("" if pd.isna(diff) else f" ({diff:+.2f} pp)")
        ratio = row[f"{metric.key}_ratio"]
        text = f"{value:,.2f}" + ("" if pd.isna(ci) else f" ±{ci:,.2f}")
        return text + ("" if pd.isna(ratio) else f" (x{ratio:.2f})")

    def text_rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`to_text`: ``metric`` then one ``mean ±CI (xratio)`` cell per label
        (``mean% ±CI (±diff pp)`` for rates and shares)."""
        labels = list(self.table.index)

        def row(name: str, cell: Any) -> dict[str, Any]:
            return {"metric": name, **{str(lb): cell(lb) for lb in labels}}

        rows = [row("runs", lambda lb: int(self.table["runs"][lb]))]
        if self.sweep_variable:
            variable = self.sweep_variable
            rows.append(row(variable, lambda lb: self.table[variable][lb]))
        rows += [row(m.key, lambda lb, m=m: self._cell(lb, m)) for m in self.metrics()]
        return rows

    def _speedup_cell(self, label: Any, metric: CompareMetric) -> str:
        row = self.table.loc[label]
        effect = row[f"{metric.key}_diff_pp"] if metric.share else row[f"{metric.key}_speedup"]
        if pd.isna(effect):
            return "n/a"
        text = f"{effect:+.2f} pp" if metric.share else f"x{effect:.2f}"
        p_value = row[f"{metric.key}_p_value"]
        if pd.isna(p_value):
            return text + " (p n/a: < 2 runs)"
        shown = "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
        return text + f" ({shown}){_significance_mark(p_value)}"

    def speedup_rows(self) -> list[dict[str, Any]]:
        """One row per metric, one column per label other than the baseline: the speedup against the
        baseline (> 1 = better; the difference in percentage points for rates and shares), its p-value
        and ``*`` when significant at 95%."""
        labels = [lb for lb in self.table.index if str(lb) != self.baseline]
        return [{"metric": m.key, **{str(lb): self._speedup_cell(lb, m) for lb in labels}} for m in self.metrics()]

    def speedup_note(self) -> str:
        """What the speedup table shows, in one line."""
        return (
            f"vs baseline {self.baseline}: speedup x (> 1 = better; latencies inverted) or difference in "
            f"percentage points (rates); p = {SIGNIFICANCE_TEST} over the repeated runs; "
            f"* = significant at {100 * (1 - SIGNIFICANCE_LEVEL):.0f}%"
        )

    def to_text(self) -> str:
        """Aligned plain text: one row per metric, one column per label with ``mean ±CI (xratio)``; then,
        with more than one label, the speedups against the baseline with their significance."""
        header = f"baseline: {self.baseline}   (x = ratio of means vs the baseline; ± = 95% CI over repeated runs)"
        text = header + "\n" + format_table(self.text_rows(), ["metric", *map(str, self.table.index)])
        others = [str(lb) for lb in self.table.index if str(lb) != self.baseline]
        if others:
            text += "\n\n" + self.speedup_note() + "\n" + format_table(self.speedup_rows(), ["metric", *others])
        return text

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


def _default_label(data: Mapping[str, Any], path: Path) -> str:
    """The file's ``tag``, else its name without suffix (a run's ``summary.json``: its directory's name)."""
    if data.get("tag"):
        return str(data["tag"])
    return path.parent.name if path.name == "summary.json" and path.parent.name else path.stem


def _read_runs(
    groups: Sequence[Sequence[ResultInput]], labels: Sequence[str] | None, sweep_variable: str | None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    rows, infos = [], []
    for i, group in enumerate(groups):
        for item in group:
            data = load_result_file(item.path)
            label = labels[i] if labels else item.group or _default_label(data, item.path)
            infos.append(_file_info(label, item.path, data))
            row: dict[str, Any] = {"label": label, "file": str(item.path)}
            if sweep_variable:
                row[sweep_variable] = _number(_lookup(data, sweep_variable))
            row.update({m.key: _number(_lookup(data, m.key, m.bench_key)) for m in COMPARE_METRICS})
            rows.append(row)
    return pd.DataFrame(rows), infos


def _baseline_label(runs: pd.DataFrame, baseline: int | str, first_rows: Sequence[int]) -> str:
    if isinstance(baseline, str):
        if baseline not in set(runs["label"]):
            raise FrameworkError(f"baseline: no run labelled {baseline!r}; labels: {sorted(set(runs['label']))}")
        return baseline
    if not 0 <= baseline < len(first_rows):
        raise FrameworkError(f"baseline: index {baseline} out of range for {len(first_rows)} inputs")
    return str(runs.iloc[first_rows[baseline]]["label"])


def _significance(groups: Mapping[str, pd.DataFrame], base: str, key: str) -> tuple[list[float], list[float]]:
    p_values, significant = [], []
    for label, group in groups.items():
        test = None if label == base else welch_t_test(group[key].tolist(), groups[base][key].tolist())
        p_values.append(math.nan if test is None else test.p_value)
        significant.append(math.nan if test is None else float(test.significant))
    return p_values, significant


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
        usable = math.isfinite(base_value) and base_value != 0 and not m.share
        table[f"{m.key}_ratio"] = table[m.key] / base_value if usable else math.nan
        speedup = table[f"{m.key}_ratio"] if m.higher_is_better else 1.0 / table[f"{m.key}_ratio"]
        table[f"{m.key}_speedup"] = speedup.replace([math.inf, -math.inf], math.nan)
        if m.share:
            table[f"{m.key}_diff_pp"] = 100.0 * (table[m.key] - base_value)
        table[f"{m.key}_p_value"], table[f"{m.key}_significant"] = _significance(groups, base, m.key)
    return table


def compare_results(
    files: Sequence[str | Path],
    labels: Sequence[str] | None = None,
    baseline: int | str = 0,
    sweep_variable: str | None = None,
) -> ComparisonResult:
    """Compare result files side by side.

    Args:
        files: Our ``summary.json`` / ``--output-file`` files, bench_serving JSONL output files, or run
            directories; a repeated run (its directory or combined ``summary.json``) stands for its
            ``rep-*`` runs (:func:`expand_result_inputs`).
        labels: One label per input (default: a repeated run's tag or directory name; else the file's
            ``tag``, else its name without suffix, a ``summary.json`` its directory's name). Runs
            sharing a label are repeated runs: their mean and 95% CI (Student t) are reported, and
            Welch's t-test against the baseline's runs gives each difference's p-value.
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
    groups = expand_result_inputs(files)
    runs, infos = _read_runs(groups, labels, sweep_variable)
    first_rows = [sum(len(g) for g in groups[:i]) for i in range(len(groups))]
    base = _baseline_label(runs, baseline, first_rows)
    return ComparisonResult(_aggregate(runs, base, sweep_variable), runs, base, sweep_variable, infos)
