"""Warnings about a run that a reader should act on: a run that did not complete, servers that exited,
failed requests by type, failed server samples, an over-saturated run (or one too short to judge), a
client-bound run (the load generator, not the server, limited it: metrics/client_check.py).

Each check is a :data:`WarningCheck`: a pure function of the run's summary and context returning its
warnings. :data:`WARNING_CHECKS` lists them in report order; :func:`run_warnings` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SEVERE_KINDS", "WARNING_CHECKS", "RunWarning", "WarningCheck", "run_warnings"]

SEVERE_KINDS: frozenset[str] = frozenset({"status", "server_exit", "saturation", "client_bound"})
"""Warning kinds shown in red (report.html, and the console when it is a terminal)."""


@dataclass(frozen=True)
class RunWarning:
    """One warning.

    Attributes:
        kind: Stable identifier (``status``, ``server_exit``, ``failed_requests``, ``scrape_errors``,
            ``saturation``, ``saturation_unjudged``, ``client_bound``).
        message: One line saying what happened and, where we know, what to do.
        detail: Supporting text shown under it (a log tail, error messages); may be empty.
    """

    kind: str
    message: str
    detail: str = ""


WarningCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], list[RunWarning]]
"""``check(summary, context) -> warnings``."""


def _status(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    status = summary.get("status")
    if status in (None, "completed"):
        return []
    hint = {
        "interrupted": "stopped by a signal; the numbers cover the requests measured until then",
        "failed": "an error stopped the run; the numbers cover the requests measured until then",
        "running": "the run had not finished when this report was written",
    }.get(str(status), "the run did not complete")
    return [RunWarning("status", f"Run status: {status} — {hint}.", str(summary.get("error") or ""))]


def _server_exits(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    out = []
    for exit_ in summary.get("server_exits") or []:
        name, code = exit_.get("name"), exit_.get("exit_code")
        message = f"{name} exited during the run with code {code}; its log is under server_logs/."
        out.append(RunWarning("server_exit", message, str(exit_.get("log_tail") or "")))
    return out


def _failed_requests(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    counts: Mapping[str, Any] = summary.get("run_totals") or summary  # the whole run, not only the window
    failed = int(counts.get("failed") or 0)
    if not failed:
        return []
    by_type: Mapping[str, int] = counts.get("errors_by_type") or {}
    kinds = ", ".join(f"{kind}: {n}" for kind, n in by_type.items()) or "type unknown"
    total = counts.get("total_requests")
    message = f"{failed} of {total} requests failed ({kinds}); latency statistics cover completed requests only."
    if context.get("failure_events"):
        message += " The run injected worker failures (failure_schedule), so failures were expected."
    return [RunWarning("failed_requests", message, "\n".join(str(m) for m in summary.get("first_errors") or []))]


def _scrape_errors(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    errors = int(summary.get("scrape_errors") or 0)
    if not errors:
        return []
    message = f"{errors} server metric samples failed; the time-series plots have gaps (timeseries.csv, scrape_error)."
    return [RunWarning("scrape_errors", message)]


def _window_text(summary: Mapping[str, Any]) -> str:
    window = summary.get("measure_window") or {}
    if "start_s" not in window:
        return "the run"
    return f"the window {window['start_s']:.1f}–{window['end_s']:.1f} s ({window.get('requests')} requests)"


def _saturation(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    """``saturated`` (metrics/saturation.py): True → the server did not keep up; None at a finite offered
    rate → the run was too short to tell (a burst the queue absorbs looks healthy)."""
    if "saturated" not in summary:
        return []
    saturated, reason = summary.get("saturated"), str(summary.get("saturation_reason") or "")
    if saturated is True:
        message = (
            f"Over-saturated over {_window_text(summary)}: {reason}. The load exceeded what the server sustains, "
            "so latencies grow with the run's length and are no steady-state figure; lower request_rate, or find "
            "the sustainable rate with `sglang-test saturate` / `sglang-test slo-search`."
        )
        return [RunWarning("saturation", message)]
    if saturated is None and summary.get("offered_rate") is not None:
        message = (
            f"Too short to tell whether the server keeps up ({reason}): a short burst is absorbed by the queue "
            "and looks healthy at any rate; size the load by time, e.g. --duration-s 60 --measure-window auto."
        )
        return [RunWarning("saturation_unjudged", message)]
    return []


def _client_bound(summary: Mapping[str, Any], context: Mapping[str, Any]) -> list[RunWarning]:
    """``client_bound`` (metrics/client_check.py): the client, not the server, limited the run."""
    if summary.get("client_bound") is not True:
        return []
    message = (
        f"Client-bound: {summary.get('client_bound_reason') or 'reason unknown'}. The client, not the server, "
        "limited this run: the load sent is not the schedule asked for, and client delays may be in the latencies; "
        "lower request_rate, use more client processes (client_processes), or run the client on a less busy "
        "machine (docs/client-precision.md)."
    )
    return [RunWarning("client_bound", message)]


WARNING_CHECKS: tuple[WarningCheck, ...] = (
    _status,
    _server_exits,
    _client_bound,
    _failed_requests,
    _scrape_errors,
    _saturation,
)
"""Every check, in report order."""


def run_warnings(
    summary: Mapping[str, Any], context: Mapping[str, Any], checks: Sequence[WarningCheck] = WARNING_CHECKS
) -> list[RunWarning]:
    """Every warning of the run: ``checks`` applied in order to ``summary`` (with ``status``,
    ``server_exits``, ``failed``, ``errors_by_type``…) and ``context`` (the run's settings)."""
    return [warning for check in checks for warning in check(summary, context)]
