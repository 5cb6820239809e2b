"""The client self-check (metrics/client_check.py): arrival lag, offered vs achieved send rate, CPU per
process and the client-bound verdict rules, on constructed records whose answers are known exactly; and
where it shows (summary keys, warning, console report, report.html tables)."""

from __future__ import annotations

import pytest

from sglang_test_framework.analysis.html_report import report_tables
from sglang_test_framework.analysis.report import format_node_report, node_report_sections
from sglang_test_framework.analysis.run_warnings import run_warnings
from sglang_test_framework.metrics.client_check import (
    CPU_BUSY_FRACTION,
    LAG_FLOOR_MS,
    achieved_send_rate,
    arrival_lag_stats,
    check_client,
    lag_bound_ms,
    measure_client_process,
    offered_send_rate,
)
from sglang_test_framework.metrics.columns import RequestColumns
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import ClientProcessStats, RequestRecord

MS = 1_000_000
T0 = 7_000_000_000_000


def run(gap_ms: float, lags_ms: list[float], send_after_ms: float = 0.0, stretch: float = 1.0) -> RequestColumns:
    """Requests scheduled every ``gap_ms``, each arriving ``lags_ms[i]`` late and sent ``send_after_ms``
    after arriving; ``stretch`` > 1 spreads the sends out (a client that fell behind)."""
    records = []
    for i, lag in enumerate(lags_ms):
        scheduled = T0 + round(i * gap_ms * MS)
        arrival = scheduled + round(lag * MS)
        send = T0 + round(i * gap_ms * stretch * MS) + round((lag + send_after_ms) * MS)
        records.append(
            RequestRecord(
                f"r{i}",
                prompt_len=10,
                scheduled_ns=scheduled,
                arrival_ns=arrival,
                send_ns=send,
                first_token_ns=send + 5 * MS,
                finish_ns=send + 9 * MS,
                chunk_ns=[send + 5 * MS, send + 7 * MS],
                chunk_tokens=[1, 1],
                coalesced_chunks=2 if i == 0 else 0,
                output_tokens=2,
                success=True,
            )
        )
    return RequestColumns.from_records(records)


def process(cpu_s: float, wall_s: float = 10.0, index: int = 0) -> ClientProcessStats:
    return ClientProcessStats(index=index, pid=100 + index, host="h", cpu_s=cpu_s, wall_s=wall_s, requests=11)


def test_lag_and_rates_are_exact() -> None:
    c = run(10.0, [0.0] * 10 + [4.0])  # 11 requests every 10 ms; the last 4 ms late
    lag = arrival_lag_stats(c)
    assert lag["p50"] == 0.0 and lag["max"] == 4.0
    assert lag["p99"] == pytest.approx(0.9 * 4.0)  # rank 0.99 × 10 = 9.9: 0.9 of the way from 0 to 4 ms
    assert offered_send_rate(c) == pytest.approx(10 / 0.100)  # (N − 1) / span of the schedule
    assert achieved_send_rate(c) == pytest.approx(10 / 0.104)  # the last send 4 ms late
    assert lag_bound_ms(offered_send_rate(c)) == pytest.approx(2.5)  # 0.25 × 10 ms inter-arrival
    assert lag_bound_ms(10_000.0) == LAG_FLOOR_MS and lag_bound_ms(None) is None


def test_a_burst_has_no_offered_rate_and_its_lag_is_not_judged() -> None:
    c = run(0.0, [0.0, 3.0, 6.0, 9.0])  # every request scheduled at once
    assert offered_send_rate(c) is None
    check = check_client(c)
    assert check.lag_bound_ms is None and not check.client_bound and check.client_bound_reason == ""


def test_an_on_time_client_is_not_bound() -> None:
    check = check_client(run(10.0, [0.2] * 21), [process(3.0)])
    assert not check.client_bound and check.client_bound_reason == ""
    assert check.max_cpu_utilisation == pytest.approx(0.3)
    assert check.processes[0]["cpu_utilisation"] == pytest.approx(0.3) and check.processes[0]["pid"] == 100
    assert check.coalesced_chunk_share == pytest.approx(2 / 42)


def test_rule_1_arrival_lag_above_a_quarter_of_the_inter_arrival() -> None:
    check = check_client(run(10.0, [3.0] * 21))  # 3 ms p99 > 2.5 ms bound
    assert check.client_bound and check.client_bound_reason.startswith("arrival lag p99 3.00 ms > 2.50 ms")
    assert not check_client(run(10.0, [2.0] * 21)).client_bound  # below the bound


def test_rule_2_achieved_send_rate_short_of_the_offered_one() -> None:
    c = run(10.0, [0.0] * 21, stretch=1.02)  # sends spread 2 % wider than the schedule, timers on time
    check = check_client(c)
    assert check.client_bound and "achieved send rate" in check.client_bound_reason
    assert "2.0 % below" in check.client_bound_reason
    assert not check_client(c, open_loop=False).client_bound  # max_concurrency: sends wait on the server
    assert not check_client(c, saturated=True).client_bound  # the server did not keep up
    assert not check_client(run(10.0, [0.0] * 21, stretch=1.005)).client_bound  # within 1 %


def test_rule_3_a_busy_process_whose_arrivals_lag() -> None:
    lagging = run(100.0, [1.5] * 21)  # 1.5 ms lag: below the 25 ms bound of rule 1, above the 1 ms floor
    busy = [process(1.0, index=0), process(CPU_BUSY_FRACTION * 10.0, index=1)]
    check = check_client(lagging, busy)
    assert check.client_bound and check.client_bound_reason.startswith("client process 1 used 90 % of a core")
    assert not check_client(run(100.0, [0.5] * 21), busy).client_bound  # busy, but the timers fire on time
    assert not check_client(lagging, [process(8.9)]).client_bound  # lagging, but with CPU headroom


def test_summary_keys_warning_and_reports() -> None:
    c = run(10.0, [3.0] * 21)
    summary = {**summarize(c), **check_client(c, [process(2.0)]).to_dict()}
    assert summary["client_bound"] is True and summary["client_check"]["client_bound"] is True
    assert set(summary["client_check"]) >= {
        "arrival_lag_p50_ms",
        "arrival_lag_p99_ms",
        "arrival_lag_max_ms",
        "offered_send_rate",
        "achieved_send_rate",
        "coalesced_chunk_share",
        "processes",
    }
    warnings = run_warnings(summary, {})
    assert [w.kind for w in warnings] == ["client_bound"]
    assert warnings[0].message.startswith("Client-bound: arrival lag p99 3.00 ms")
    plain = format_node_report(summary, {}, color=False)
    red = format_node_report(summary, {}, color=True)
    assert "Client Self-check:" in plain and "- Client-bound: YES — arrival lag p99" in plain
    assert "\033[31m- Client-bound: arrival lag" in red and "\033[" not in plain
    section = node_report_sections(summary)[-1]
    assert section.title == "Client Self-check" and section.alert
    assert 'class="alert"' in report_tables([section])
    calm = {**summarize(c), **check_client(run(10.0, [0.1] * 21)).to_dict()}
    assert run_warnings(calm, {}) == [] and not node_report_sections(calm)[-1].alert


def test_the_process_is_measured_even_when_the_block_raises() -> None:
    out: list[ClientProcessStats] = []
    with pytest.raises(KeyError), measure_client_process(out, lambda: 7):
        sum(range(10_000))
        raise KeyError("x")
    assert len(out) == 1 and out[0].requests == 7 and out[0].index == 0
    assert out[0].cpu_s >= 0 and out[0].wall_s > 0
