"""The ``report.html`` of each scenario: a node or routing run, a routing policy comparison, a sweep and
``sglang-test compare``. Each page has the title block, a warnings section, the summary tables (the
console report's numbers and formatting), the plots embedded, and the config (:mod:`.html_report`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..fileio import write_text_atomic
from ..results import RepeatedRunResults, RunResults
from .compare import ComparisonResult
from .html_report import (
    HTMLPage,
    config_block,
    escape,
    figures_block,
    frame_table,
    key_value_table,
    report_tables,
    rows_table,
    warnings_block,
)
from .repeats import repeat_rows, repeats_note, repeats_table
from .report import ReportLine, ReportSection, common_settings, format_cell, node_report_sections, run_settings
from .run_warnings import RunWarning, run_warnings

__all__ = [
    "REPORT_FILE",
    "comparison_report_html",
    "policy_comparison_html",
    "repeats_report_html",
    "run_report_html",
    "saturation_report_html",
    "sweep_report_html",
    "write_repeats_report",
    "write_report",
    "write_run_report",
]

REPORT_FILE = "report.html"
WARNINGS_NOTE = "How each check decides (client-bound, over-saturated, ...): docs/metrics.md, docs/client-precision.md."


def write_report(path: Path, page_html: str) -> Path:
    """Write ``page_html`` to ``path`` atomically and return ``path``."""
    return write_text_atomic(path, page_html)


def _prefixed(prefix: str, warnings: Sequence[RunWarning]) -> list[RunWarning]:
    return [replace(w, message=f"{prefix}: {w.message}") for w in warnings]


def _run_times(output_dir: Path | None) -> list[tuple[str, str]]:
    path = output_dir / "run.json" if output_dir is not None else None
    if path is None or not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        (label, str(data[key])) for key, label in (("started_at", "Started"), ("ended_at", "Ended")) if data.get(key)
    ]


def _run_config(results: RunResults) -> Mapping[str, Any]:
    if results.config:
        return results.config
    path = results.output_dir / "config.yaml" if results.output_dir is not None else None
    if path is not None and path.is_file():
        import yaml

        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _routing_section(results: RunResults) -> ReportSection:
    s, c = results.summary, results.context
    lines = [
        ReportLine((("Router", str(c.get("router_impl"))), ("Policy", str(c.get("routing_policy"))))),
        ReportLine((("Workers", format_cell(s.get("num_workers", c.get("num_workers")))),)),
        ReportLine((("Load Imbalance (max / mean requests)", format_cell(s.get("load_imbalance"))),)),
    ]
    if s.get("router_decision_us_mean") is not None:
        lines.append(ReportLine((("Mean Routing Decision", f"{format_cell(s['router_decision_us_mean'])} us"),)))
    resets = c.get("server_counter_resets") or []
    if resets:
        note = "server_requests_served adds up each process lifetime (a lower bound where a counter went down)"
        lines.append(ReportLine((("Request Counter Restarted", f"{', '.join(map(str, resets))}: {note}"),)))
    return ReportSection("Routing", tuple(lines))


def _files_block(results: RunResults) -> str:
    base = results.output_dir
    rows = []
    for key, path in results.files.items():
        shown = path.relative_to(base) if base is not None and path.is_relative_to(base) else path
        rows.append((key, str(shown)))
    return key_value_table(rows) if rows else '<p class="muted">No files.</p>'


def _verdict_block(verdict: Mapping[str, Any]) -> str:
    """``sglang-test stress``'s verdict (``verdict.json``): PASS in green, FAIL in red with the reasons."""
    rate = verdict.get("success_rate")
    rows = [
        ("Preset", str(verdict.get("preset"))),
        ("Verdict", str(verdict.get("verdict"))),
        ("Success Rate", "n/a" if rate is None else f"{100 * float(rate):.1f}%"),
        ("Required", f"≥ {100 * float(verdict.get('min_success_rate') or 0):.1f}%"),
        ("Completed", f"{verdict.get('completed')} of {verdict.get('total_requests')} requests"),
    ]
    rows += [("Problem", str(problem)) for problem in verdict.get("problems") or []]
    passed = verdict.get("verdict") == "PASS"
    return key_value_table(rows, "PASS" if passed else "FAIL", "" if passed else "alert")


def run_report_html(results: RunResults, plots: Sequence[Path]) -> str:
    """The page of one node or routing run (``results.kind``)."""
    routing = results.kind == "routing"
    page = HTMLPage(
        f"{'Routing' if routing else 'Node'} test: {results.name}",
        run_settings(results.context) + _run_times(results.output_dir),
        status=results.summary.get("status"),
    )
    if results.summary.get("stress_verdict"):
        page.add("verdict", "Stress verdict", _verdict_block(results.summary["stress_verdict"]))
    page.add("warnings", "Warnings", warnings_block(run_warnings(results.summary, results.context), WARNINGS_NOTE))
    sections = node_report_sections(results.summary, results.context)
    if routing:
        sections.append(_routing_section(results))
    page.add("summary", "Summary", report_tables(sections))
    if routing and results.per_worker is not None:
        from .metric_text import display_frame

        page.add("workers", "Per worker", frame_table(display_frame(results.per_worker)))
    if results.summary.get("per_workload"):
        from .workload_breakdown import workload_rows

        columns, rows = workload_rows(results.summary["per_workload"])
        page.add("workloads", "Per workload (ms; whole run)", rows_table(columns, rows))
    if routing and results.summary.get("pd"):
        from .pd_report import pd_report_block

        page.add("pd", "Prefill/decode disaggregation", pd_report_block(results.summary["pd"]))
    page.add("plots", "Plots", figures_block(plots))
    page.add("config", "Config", config_block(_run_config(results)))
    page.add("files", "Files", _files_block(results))
    return page.render()


def write_run_report(results: RunResults, plots: Sequence[Path]) -> Path | None:
    """Write ``report.html`` into the run's directory (None when it has none) and return its path."""
    if results.output_dir is None:
        return None
    return write_report(results.output_dir / REPORT_FILE, run_report_html(results, plots))


def repeats_report_html(results: RepeatedRunResults) -> str:
    """The page of a repeated node or routing run: mean and 95% CI of each key metric over the repeats,
    each repeat's warnings and key numbers, and where each repeat's own page (with its plots) is."""
    base = results.output_dir
    page = HTMLPage(
        f"{'Routing' if results.kind == 'routing' else 'Node'} test: {results.name}, {len(results.repeats)} repeats",
        run_settings(results.context) + _run_times(base),
        status=results.summary.get("status"),
    )
    warnings = [
        w
        for rep in results.repeats
        for w in _prefixed(rep.output_dir.name if rep.output_dir else rep.name, run_warnings(rep.summary, rep.context))
    ]
    page.add("warnings", "Warnings", warnings_block(warnings, WARNINGS_NOTE))
    columns, rows = repeat_rows(results.summary)
    note = f'<p class="muted">{escape(repeats_note(results.summary, results.context))}</p>'
    page.add("summary", "Summary over the repeats", note + rows_table(columns, rows))
    page.add("runs", "Repeats", frame_table(repeats_table([rep.summary for rep in results.repeats])))
    pages = [
        (rep.output_dir.name, str(rep.files["report"].relative_to(base)))
        for rep in results.repeats
        if base is not None and rep.output_dir is not None and "report" in rep.files
    ]
    page.add("plots", "Plots", key_value_table(pages, "each repeat's page holds its plots") if pages else "")
    page.add("config", "Config", config_block(_run_config(results)))
    page.add("files", "Files", _files_block(results))
    return page.render()


def write_repeats_report(results: RepeatedRunResults) -> Path | None:
    """Write the repeated run's ``report.html`` into its directory (None when it has none)."""
    if results.output_dir is None:
        return None
    return write_report(results.output_dir / REPORT_FILE, repeats_report_html(results))


def policy_comparison_html(
    table: pd.DataFrame, results: Mapping[str, RunResults], plots: Sequence[Path], config: Mapping[str, Any]
) -> str:
    """The page of a routing policy comparison: the comparison table, each policy's per-worker table and
    warnings, the policy plots and the base config."""
    contexts = [res.context for res in results.values()]
    page = HTMLPage(f"Routing policy comparison: {', '.join(results)}", common_settings(contexts))
    warnings = [w for policy, res in results.items() for w in _prefixed(policy, run_warnings(res.summary, res.context))]
    page.add("warnings", "Warnings", warnings_block(warnings, WARNINGS_NOTE))
    from .metric_text import display_frame

    page.add("summary", "Comparison", frame_table(display_frame(table)))
    per_worker = [
        f"<h3>{escape(policy)}</h3>{frame_table(display_frame(res.per_worker))}"
        for policy, res in results.items()
        if res.per_worker is not None
    ]
    page.add("workers", "Per worker", "".join(per_worker) or '<p class="muted">No per-worker tables.</p>')
    page.add("plots", "Plots", figures_block(plots))
    page.add("config", "Config (base; each policy ran with its own routing_policy)", config_block(config))
    return page.render()


def sweep_report_html(
    table: pd.DataFrame,
    summaries: Mapping[str, Mapping[str, Any]],
    failed: Mapping[str, str],
    plots: Sequence[Path],
    config: Mapping[str, Any],
) -> str:
    """The page of a sweep: one row per point, the sweep plots, warnings per point (points that could
    not run, and each point's own run warnings) and the sweep config (base config and grid).

    Args:
        table: The sweep table.
        summaries: Per point name, the summary line of its run (``points/<point>.json``).
        failed: Points whose server failed to start, with the reason.
        plots: The sweep PNGs.
        config: ``SweepConfig`` as a dict.
    """
    contexts = [s.get("context") or {} for s in summaries.values()]
    grid = ", ".join(str(k) for k in (config.get("grid") or {}))
    page = HTMLPage(f"Sweep over {grid or 'a grid'}: {len(table)} points", common_settings(contexts))
    warnings = [
        RunWarning("point_failed", f"{name}: did not run ({why}); rerun the sweep to retry it.")
        for name, why in failed.items()
    ]
    for name, summary in summaries.items():
        warnings += _prefixed(name, run_warnings(summary, summary.get("context") or {}))
    page.add("warnings", "Warnings", warnings_block(warnings, WARNINGS_NOTE))
    page.add("summary", "Points", frame_table(table) if not table.empty else "<p>No finished points.</p>")
    page.add("plots", "Plots", figures_block(plots))
    page.add("config", "Config", config_block(config))
    return page.render()


def saturation_report_html(
    table: pd.DataFrame,
    headline: str,
    notes: Sequence[str],
    settings: Sequence[tuple[str, str]],
    plots: Sequence[Path],
    config: Mapping[str, Any],
) -> str:
    """The page of a saturation sweep (``sglang-test saturate``): the knee, the per-step table, the
    throughput–latency figure and the sweep's config.

    Args:
        table: One row per step (``scenarios.saturation.STEP_COLUMNS``).
        headline: The burst throughput and the knee in words.
        notes: What the reader should know (no step saturated, every step saturated…), shown as warnings.
        settings: The sweep's settings for the title block.
        plots: The figure(s).
        config: The sweep's settings and the base config.
    """
    page = HTMLPage("Saturation sweep: throughput vs latency", settings)
    page.add("warnings", "Warnings", warnings_block([RunWarning("saturation_sweep", note) for note in notes]))
    body = "".join(f"<p>{escape(line)}</p>" for line in headline.splitlines())
    body += frame_table(table) if not table.empty else "<p>No steps ran.</p>"
    page.add("summary", "Steps", body)
    page.add("plots", "Plots", figures_block(plots))
    page.add("config", "Config", config_block(config))
    return page.render()


def _file_warnings(result: ComparisonResult) -> list[RunWarning]:
    out: list[RunWarning] = []
    for info in result.files:
        prefix = f"{info['label']} ({Path(info['file']).name})"
        summary = {"status": info["status"], "server_exits": info["server_exits"], "failed": info["failed"]}
        out += _prefixed(prefix, run_warnings(summary, info["context"]))
    return out


def comparison_report_html(result: ComparisonResult, plots: Sequence[Path]) -> str:
    """The page of ``sglang-test compare``: the comparison table (the console's cells), the runs compared,
    the plot, and warnings about runs that did not complete or had failures."""
    labels = [str(x) for x in result.table.index]
    page = HTMLPage(
        f"Comparison of {len(result.files)} result files (baseline: {result.baseline})",
        common_settings([f["context"] for f in result.files]),
    )
    page.add("warnings", "Warnings", warnings_block(_file_warnings(result), WARNINGS_NOTE))
    note = '<p class="muted">x = ratio of means vs the baseline; ± = 95% CI over repeated runs.</p>'
    summary = note + rows_table(["metric", *labels], result.text_rows())
    others = [label for label in labels if label != result.baseline]
    if others:
        speedups = f'<h3>Speedup vs {escape(result.baseline)}</h3><p class="muted">{escape(result.speedup_note())}</p>'
        summary += speedups + rows_table(["metric", *others], result.speedup_rows())
    page.add("summary", "Comparison", summary)
    runs = [{k: info[k] for k in ("label", "file", "status", "failed")} for info in result.files]
    page.add("runs", "Runs", rows_table(["label", "file", "status", "failed"], runs))
    page.add("plots", "Plots", figures_block(plots))
    inputs = {
        "files": [info["file"] for info in result.files],
        "labels": [info["label"] for info in result.files],
        "baseline": result.baseline,
        "sweep_variable": result.sweep_variable,
    }
    page.add("config", "Inputs", config_block(inputs))
    return page.render()
