"""Checks of the ``trace_*`` fields of a workload (``dataset_name="trace"``, docs/workloads.md), and the
replay window they select: :func:`check_trace_fields` counts the window's rows so ``num_prompts`` is the
number of requests the replay sends (the config dump and every report show it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import DatasetError

if TYPE_CHECKING:
    from ..traces import TraceWindow
    from .workload import WorkloadConfig

__all__ = ["TRACE_DEFAULTS", "TraceSessions", "check_trace_fields", "trace_window"]

TraceSessions = Literal["open", "closed"]
"""How a trace's ``session_id`` rows are replayed: ``open`` (each at its own time) or ``closed`` (each
turn after the previous turn of its session finished, plus a think time)."""

TRACE_DEFAULTS: dict[str, object] = {
    "trace_format": "auto",
    "trace_speedup": 1.0,
    "trace_start_s": 0.0,
    "trace_max_duration_s": None,
    "trace_rows": None,
    "trace_max_idle_gap_s": None,
    "trace_block_size": 512,
    "trace_sessions": "open",
    "trace_think_time_s": None,
}
"""Every trace field and its default (a non-default value needs ``dataset_name="trace"``)."""


def trace_window(cfg: WorkloadConfig, max_rows: int | None) -> TraceWindow:
    """The :class:`~sglang_test_framework.traces.TraceWindow` of a workload's ``trace_*`` fields, keeping
    at most ``max_rows`` rows."""
    from ..traces import TraceWindow  # imported here: traces imports config.base

    row_start, row_end = (cfg.trace_rows[0], cfg.trace_rows[1]) if cfg.trace_rows else (0, None)
    return TraceWindow(
        speedup=cfg.trace_speedup,
        start_s=cfg.trace_start_s,
        max_duration_s=cfg.trace_max_duration_s,
        row_start=row_start,
        row_end=row_end,
        max_rows=max_rows,
        max_idle_gap_s=cfg.trace_max_idle_gap_s,
    )


def _window_rows(cfg: WorkloadConfig, max_rows: int | None) -> int:
    """How many rows the replay window selects (reads and checks the whole trace file)."""
    from ..traces import read_trace, select_rows

    assert cfg.dataset_path is not None  # checked by the caller
    try:
        trace = read_trace(Path(cfg.dataset_path), cfg.trace_format, cfg.trace_block_size)
    except DatasetError as exc:
        raise ValueError(f"dataset_path: {exc}") from None
    rows, _ = select_rows(trace, trace_window(cfg, max_rows))
    if not rows:
        span_s = trace.rows[-1].timestamp_ns / 1e9
        raise ValueError(
            f"dataset_path: no rows of {cfg.dataset_path} in the selected window ({len(trace.rows)} rows over "
            f"{span_s:.1f} s); check trace_start_s, trace_max_duration_s and trace_rows"
        )
    return len(rows)


def _check_sessions(cfg: WorkloadConfig) -> None:
    if cfg.trace_think_time_s is not None and cfg.trace_sessions != "closed":
        raise ValueError("trace_think_time_s: applies only to trace_sessions='closed'; omit it or set trace_sessions")
    if cfg.routing_key_by == "session" and cfg.trace_sessions != "closed":
        raise ValueError(
            "routing_key_by: 'session' with a trace needs trace_sessions='closed' (sessions from session_id); "
            "set it or use routing_key_by 'none'"
        )


def check_trace_fields(cfg: WorkloadConfig) -> int | None:
    """Validate the trace fields; for a trace, return the number of requests the replay sends (the rows of
    the window, at most an explicit ``num_prompts``), else None.

    Raises:
        ValueError: One line naming the field and the fix.
    """
    if cfg.dataset_name != "trace":
        for name, default in TRACE_DEFAULTS.items():
            if getattr(cfg, name) != default:
                raise ValueError(f"{name}: applies only to dataset_name='trace'; omit it or set dataset_name")
        return None
    if cfg.dataset_path is None:
        raise ValueError(
            "dataset_path: required when dataset_name='trace'; pass a Mooncake JSONL, Azure CSV or generic "
            "JSONL/CSV trace file"
        )
    given = cfg.model_fields_set
    for name, fix in (
        ("request_rate", "the trace sets the arrival times; scale them with trace_speedup"),
        ("duration_s", "cut the trace with trace_max_duration_s"),
        ("ramp_up_s", "the trace sets the arrival times"),
        ("burstiness", "the trace sets the arrival times"),
    ):
        if name in given and getattr(cfg, name) != type(cfg).model_fields[name].default:
            raise ValueError(f"{name}: not used by dataset_name='trace' ({fix}); omit it")
    rows = cfg.trace_rows
    if rows is not None and (len(rows) != 2 or not 0 <= rows[0] < rows[1]):
        raise ValueError(f"trace_rows: {rows}; give START END with 0 ≤ START < END (rows [START, END) by time)")
    _check_sessions(cfg)
    return _window_rows(cfg, cfg.num_prompts if "num_prompts" in given else None)
