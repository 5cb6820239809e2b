"""Warnings about a run that a reader should act on: a run that did not complete, servers that exited,
failed requests by type, failed server samples.

Each check is a :data:`WarningCheck`: a pure function of the run's summary and context returning its
warnings. :data:`WARNING_CHECKS` lists them in report order; :func:`run_warnings` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["WARNING_CHECKS", "RunWarning", "WarningCheck", "run_warnings"]


@dataclass(frozen=True)
class RunWarning:
    """One warning.

    Attributes:
        kind: Stable identifier (``status``, ``server_exit``, ``failed_requests``, ``scrape_errors``).
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
    failed = int(summary.get("failed") or 0)
    if not failed:
        return []
    by_type: Mapping[str, int] = summary.get("errors_by_type") or {}
    kinds = ", ".join(f"{kind}: {n}" for kind, n in by_type.items()) or "type unknown"
    total = summary.get("total_requests")
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


WARNING_CHECKS: tuple[WarningCheck, ...] = (_status, _server_exits, _failed_requests, _scrape_errors)
"""Every check, in report order. Checks still to come add themselves here: over-saturation (the server
queue or latency growing through the run at a rate above capacity) and client-bound runs (dispatcher
lag: ``p99_schedule_lag``, the client falling behind its schedule)."""


def run_warnings(
    summary: Mapping[str, Any], context: Mapping[str, Any], checks: Sequence[WarningCheck] = WARNING_CHECKS
) -> list[RunWarning]:
    """Every warning of the run: ``checks`` applied in order to ``summary`` (with ``status``,
    ``server_exits``, ``failed``, ``errors_by_type``…) and ``context`` (the run's settings)."""
    return [warning for check in checks for warning in check(summary, context)]
