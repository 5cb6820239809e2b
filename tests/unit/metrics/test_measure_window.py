"""The measurement window (which requests and tokens it holds, the rates over it) and the over-saturation
rule, on synthetic runs whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from sglang_test_framework.analysis.report import format_node_report
from sglang_test_framework.analysis.run_warnings import run_warnings
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.saturation import judge_saturation, slope_per_s
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.metrics.window import (
    LoadPhases,
    backlog,
    in_window,
    resolve_window,
    window_goodput,
    window_summary,
)
from sglang_test_framework.records import RequestRecord

S = 1_000_000_000
T0 = 5_000 * S


def record(
    i: int, scheduled_s: float, start_s: float, finish_s: float, tokens: int = 4, ok: bool = True
) -> RequestRecord:
    """A request scheduled (and sent) at ``scheduled_s``, served from ``start_s``, finished at ``finish_s``;
    its tokens evenly spread from ``start_s`` to ``finish_s``."""
    times = [T0 + round((start_s + (finish_s - start_s) * (k + 1) / tokens) * S) for k in range(tokens)]
    scheduled = T0 + round(scheduled_s * S)
    return RequestRecord(
        f"r{i}",
        prompt_len=10,
        scheduled_ns=scheduled,
        arrival_ns=scheduled,
        send_ns=scheduled,
        first_token_ns=times[0] if ok else None,
        finish_ns=times[-1],
        chunk_ns=times if ok else [],
        chunk_tokens=[1] * tokens if ok else [],
        output_tokens=tokens if ok else 0,
        success=ok,
        error=None if ok else "boom",
        error_type=None if ok else "http",
    )


def fifo_run(rate: float, service_s: float, duration_s: float, servers: int = 1) -> list[RequestRecord]:
    """Arrivals every 1/rate s for ``duration_s``, served first come first served by ``servers`` servers
    of ``service_s`` each (the capacity is servers / service_s req/s)."""
    free = [0.0] * servers
    out = []
    for i in range(round(rate * duration_s)):
        t = i / rate
        k = int(np.argmin(free))
        start = max(t, free[k])
        free[k] = start + service_s
        out.append(record(i, t, start, free[k]))
    return out


def columns(records: list[RequestRecord]) -> RequestColumns:
    return RequestColumns.from_records(records)


def phases(duration_s: float, ramp_s: float = 0.0) -> LoadPhases:
    return LoadPhases(T0, ramp_s, duration_s)


def test_select_keeps_each_rows_token_gaps_and_summarises_like_the_subset() -> None:
    records = [*fifo_run(4.0, 0.2, 5.0), record(90, 1.0, 1.0, 10.0, tokens=2), record(91, 2.0, 2.0, 2.5, ok=False)]
    keep = np.array([i % 3 != 1 for i in range(len(records))])
    subset = [r for r, k in zip(records, keep, strict=True) if k]
    chosen, reference = columns(records).select(keep), columns(subset)
    assert np.array_equal(
        chosen.gaps.exact(0, chosen.gaps.values.size), reference.gaps.exact(0, reference.gaps.values.size)
    )
    assert chosen.gaps.overflow_row.tolist() == reference.gaps.overflow_row.tolist() == [len(subset) - 2]  # a 4.5 s gap
    mine, theirs = summarize(chosen), summarize(reference)
    assert {k: v for k, v in mine.items() if k != "first_errors"} == {
        k: v for k, v in theirs.items() if k != "first_errors"
    }


def test_resolve_window_modes() -> None:
    c = columns(fifo_run(2.0, 0.1, 10.0))
    assert (resolve_window("all", phases(10.0)).start_s, resolve_window("all", phases(10.0)).end_s) == (0.0, 10.0)
    auto = resolve_window("auto", phases(10.0))
    assert (auto.mode, auto.start_s, auto.end_s) == ("auto", 1.0, 10.0)  # 10% settling without a ramp-up
    ramped = resolve_window("auto", phases(10.0, ramp_s=4.0))
    assert (ramped.start_s, ramped.end_s) == (4.0, 10.0)
    fixed = resolve_window((2.0, 5.0), phases(10.0))
    assert (fixed.mode, fixed.start_ns, fixed.end_ns) == ("fixed", T0 + 2 * S, T0 + 5 * S)
    from_records = resolve_window("auto", None, c)  # no phases: the records' own first and last arrival
    assert (from_records.origin_ns, from_records.load_end_s) == (T0, 9.5)


def test_window_holds_requests_scheduled_inside_and_throughput_emitted_inside() -> None:
    # one request per second at t = 0..9, each served 0.5 s (no queueing); 4 tokens at +0.125 s steps
    records = fifo_run(1.0, 0.5, 10.0)
    c = columns(records)
    w = resolve_window((2.0, 6.0), phases(10.0))
    assert in_window(c, w).tolist() == [2 <= i <= 6 for i in range(10)]
    out = window_summary(c, w)
    assert out["measure_window"]["requests"] == 5 and out["measure_window"]["excluded_requests"] == 5
    assert out["total_requests"] == 5 and out["run_totals"]["total_requests"] == 10
    assert out["offered_rate"] == 5 / 4  # scheduled at 2, 3, 4, 5, 6
    assert out["achieved_rate"] == out["request_throughput"] == 4 / 4  # finished at 2.5, 3.5, 4.5, 5.5
    assert out["output_throughput"] == 4 * 4 / 4  # tokens of the 4 finished inside (6's come after 6 s)
    assert out["duration_s"] == 4.0
    assert out["concurrency"] == pytest.approx(4 * 0.5 / 4)  # 4 whole requests of 0.5 s inside 4 s


def test_all_keeps_the_whole_run_summary_and_adds_the_rates() -> None:
    c = columns(fifo_run(2.0, 0.1, 10.0))
    out = window_summary(c, resolve_window("all", phases(10.0)))
    assert set(out) == {"measure_window", "offered_rate", "achieved_rate"}
    assert out["measure_window"]["requests"] == 20 and out["offered_rate"] == 20 / 10


def test_failures_outside_the_window_stay_in_the_run_totals() -> None:
    records = fifo_run(1.0, 0.5, 10.0)
    records[0] = record(0, 0.0, 0.0, 0.5, ok=False)
    out = window_summary(columns(records), resolve_window("auto", phases(10.0)))
    assert out["failed"] == 0 and out["run_totals"]["failed"] == 1
    summary = {**summarize(columns(records)), **out, "status": "completed"}
    assert [w.kind for w in run_warnings(summary, {})] == ["failed_requests"]


def test_backlog_counts_scheduled_but_unfinished_requests() -> None:
    c = columns([record(0, 0.0, 0.0, 2.0), record(1, 1.0, 2.0, 3.0), record(2, 1.5, 3.0, 4.0)])
    at = np.array([T0 + round(t * S) for t in (0.5, 1.0, 1.6, 2.0, 3.5, 4.0)], dtype=np.int64)
    assert backlog(c, at).tolist() == [1, 2, 3, 2, 1, 0]


def test_window_goodput_counts_the_windows_requests_per_second_of_window() -> None:
    c = columns(fifo_run(1.0, 0.5, 10.0))
    block = window_goodput(c, resolve_window((2.0, 6.0), phases(10.0)), {"e2el": 600.0})
    assert (block["good_requests"], block["request_goodput"], block["slo_attainment"]) == (5, 5 / 4, 1.0)


def test_slope_per_s_of_a_line_is_exact() -> None:
    t = np.array([T0 + k * S // 10 for k in range(50)], dtype=np.int64)
    assert slope_per_s(t, 3.0 + 2.5 * (t - T0) / S) == pytest.approx(2.5)
    assert slope_per_s(t[:1], np.ones(1)) is None


def test_a_server_that_keeps_up_is_not_saturated() -> None:
    c = columns(fifo_run(5.0, 0.1, 20.0))  # capacity 10 req/s, offered 5
    verdict = judge_saturation(c, resolve_window("auto", phases(20.0)))
    assert verdict.saturated is False and verdict.reason.startswith("keeps up")


def test_offered_above_capacity_is_saturated_with_the_reason() -> None:
    c = columns(fifo_run(15.0, 0.1, 20.0))  # capacity 10 req/s, offered 15: the backlog grows 5 req/s
    verdict = judge_saturation(c, resolve_window("auto", phases(20.0)))
    assert verdict.saturated is True and "client backlog" in verdict.reason
    assert verdict.backlog_slope == pytest.approx(5.0, rel=0.1)
    w = resolve_window("auto", phases(20.0))
    out = window_summary(c, w)
    assert out["achieved_rate"] < 0.7 * out["offered_rate"]


def test_an_idle_server_filling_up_is_not_growth() -> None:
    # 8 servers of 3 s each at 2 req/s: 6 requests in flight once full; the "all" window starts empty
    c = columns(fifo_run(2.0, 3.0, 12.0, servers=8))
    verdict = judge_saturation(c, resolve_window("all", phases(11.5)))
    assert verdict.saturated is False, verdict.reason


def test_a_growing_server_queue_is_saturation_even_when_the_client_backlog_is_flat() -> None:
    c = columns(fifo_run(5.0, 0.1, 20.0))
    t = np.array([T0 + k * S // 2 for k in range(41)], dtype=np.int64)
    queue = {"server_0": (t, 2.0 * (t - T0) / S)}
    verdict = judge_saturation(c, resolve_window("auto", phases(20.0)), queue)
    assert verdict.saturated is True and "server queue" in verdict.reason
    assert verdict.server_queue_slope == pytest.approx(2.0)


def test_too_short_or_a_burst_is_not_judged() -> None:
    short = judge_saturation(columns(fifo_run(5.0, 0.1, 1.0)), resolve_window("all", phases(1.0)))
    assert short.saturated is None and "not judged" in short.reason
    burst = columns([record(i, 0.0, 0.1 * i, 0.1 * i + 0.1) for i in range(50)])
    verdict = judge_saturation(burst, resolve_window("all", phases(0.0)))
    assert verdict.saturated is None and "request_rate=inf" in verdict.reason


def test_console_report_and_warnings_show_the_window_and_the_verdict() -> None:
    c = columns(fifo_run(15.0, 0.1, 20.0))
    w = resolve_window("auto", phases(20.0))
    summary = {**summarize(c), **window_summary(c, w), **judge_saturation(c, w).to_dict(), "status": "completed"}
    kinds = [warning.kind for warning in run_warnings(summary, {})]
    assert kinds == ["saturation"]
    text = format_node_report(summary, {"model": "m", "backend": "sim", "request_rate": 15.0})
    assert "Measurement Window:" in text and "- Over-saturated: YES" in text
    assert "Warnings:\n- Over-saturated over the window 2.0–20.0 s" in text
    unjudged = {**summary, "saturated": None, "saturation_reason": "not judged: short"}
    assert [warning.kind for warning in run_warnings(unjudged, {})] == ["saturation_unjudged"]
    assert run_warnings({**unjudged, "offered_rate": None}, {}) == []  # a deliberate burst
    assert d.NS_PER_S == S
