"""One test per metric definition, on hand-built records with known timestamps."""

from __future__ import annotations

import math

import pytest

from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 5_000_000_000_000  # an arbitrary monotonic origin (0 would mean "not recorded")


def at(ms: float) -> int:
    return T0 + int(ms * MS)


def rec(
    rid: str,
    arrival: float,
    send: float,
    chunks: list[tuple[float, int]],
    finish: float | None,
    *,
    scheduled: float | None = None,
    ok: bool = True,
    prompt: int = 100,
    cached: int | None = None,
    error_type: str = "http",
) -> RequestRecord:
    return RequestRecord(
        rid,
        prompt_len=prompt,
        scheduled_ns=at(arrival if scheduled is None else scheduled),
        arrival_ns=at(arrival),
        send_ns=at(send),
        first_token_ns=at(chunks[0][0]) if chunks else None,
        finish_ns=at(finish) if finish is not None else None,
        chunk_ns=[at(t) for t, _ in chunks],
        chunk_tokens=[k for _, k in chunks],
        output_tokens=sum(k for _, k in chunks),
        cached_tokens=cached,
        success=ok,
        error=None if ok else "boom",
        error_type=None if ok else error_type,
    )


# R1: lagged 1 ms, queued 9 ms, 5 tokens (the last chunk carries 3), latency 100 ms.
R1 = rec("r1", 1, 10, [(50, 1), (60, 1), (90, 3)], 110, scheduled=0, cached=50)
# R2: queued 200 ms, 2 tokens, latency 200 ms.
R2 = rec("r2", 100, 300, [(400, 1), (420, 1)], 500, prompt=200, cached=0)
# R3: failed after 10 ms.
R3 = rec("r3", 600, 600, [], 610, ok=False)
# R4: one token, latency 30 ms.
R4 = rec("r4", 700, 700, [(720, 1)], 730, prompt=50)
ALL = [R1, R2, R3, R4]


def never_sent() -> RequestRecord:
    return RequestRecord("cancelled", arrival_ns=at(800), scheduled_ns=at(800), error_type="cancelled")


# ----------------------------------------------------------------------------- per request
def test_server_latency_is_finish_minus_send() -> None:
    assert d.server_latency_ms(R1) == 100 and d.server_latency_ms(R2) == 200
    assert d.server_latency_ms(never_sent()) is None


def test_total_latency_includes_client_queueing() -> None:
    assert d.total_latency_ms(R1) == 109 and d.total_latency_ms(R2) == 400


def test_queue_time_is_send_minus_arrival() -> None:
    assert d.queue_time_ms(R1) == 9 and d.queue_time_ms(R2) == 200 and d.queue_time_ms(R4) == 0
    assert d.queue_time_ms(never_sent()) is None


def test_schedule_lag_is_arrival_minus_scheduled() -> None:
    assert d.schedule_lag_ms(R1) == 1 and d.schedule_lag_ms(R2) == 0


def test_ttft_is_first_token_minus_send() -> None:
    assert d.ttft_ms(R1) == 40 and d.ttft_ms(R2) == 100
    assert d.ttft_ms(R3) is None


def test_itl_spreads_a_k_token_chunk_over_k_gaps() -> None:
    assert d.itl_ms(R1) == pytest.approx([10.0, 10.0, 10.0, 10.0])  # 60−50, then (90−60)/3 three times
    assert d.itl_ms(R4) == []
    with_empty_chunk = rec("e", 0, 0, [(10, 1), (20, 0), (40, 2)], 50)
    assert d.itl_ms(with_empty_chunk) == pytest.approx([15.0, 15.0])  # gap from the last chunk with tokens


def test_tpot_only_when_more_than_one_token() -> None:
    assert d.tpot_ms(R1) == pytest.approx((100 - 40) / 4)
    assert d.tpot_ms(R2) == pytest.approx(100)
    assert d.tpot_ms(R4) is None and d.tpot_ms(R3) is None


def test_token_times_follow_the_itl_rule() -> None:
    assert [(t - T0) / MS for t in d.token_times_ns(R1)] == [50, 60, 70, 80, 90]
    assert d.token_times_ns(R3).size == 0


# ----------------------------------------------------------------------------- run level
def test_completed_failed_and_success_rate() -> None:
    assert d.completed(ALL) == 3 and d.failed(ALL) == 1
    assert d.completed([]) == 0 and d.failed([]) == 0
    assert d.success_rate(ALL) == 0.75 and d.success_rate([]) == 0.0


def test_error_counts_by_type() -> None:
    errors = [R3, rec("t", 0, 0, [], 1, ok=False, error_type="timeout"), never_sent(), R1]
    assert d.error_counts(errors) == {"http": 1, "timeout": 1, "cancelled": 1}


def test_token_totals_count_completed_requests_only() -> None:
    assert d.total_input_tokens(ALL) == 100 + 200 + 50
    assert d.total_output_tokens(ALL) == 5 + 2 + 1


def test_duration_is_last_finish_minus_first_send() -> None:
    assert d.duration_s([*ALL, never_sent()]) == pytest.approx((730 - 10) / 1000)
    assert d.duration_s([]) == 0.0 and d.duration_s([never_sent()]) == 0.0


def test_throughputs_divide_completed_totals_by_duration() -> None:
    assert d.request_throughput(ALL, 2.0) == 1.5
    assert d.input_throughput(ALL, 2.0) == 175.0
    assert d.output_throughput(ALL, 2.0) == 4.0
    assert d.total_throughput(ALL, 2.0) == 179.0
    assert d.request_throughput(ALL, 0.0) == 0.0


def test_concurrency_is_sum_of_latencies_over_duration() -> None:
    # (0.1 + 0.2 + 0.03) s of completed requests; the failed R3 does not count.
    assert d.concurrency(ALL, 0.5) == pytest.approx(0.33 / 0.5)


def test_max_in_flight_sweep_line() -> None:
    spans = [(0, 100), (50, 150), (60, 70), (100, 200)]  # the 4th starts as the 1st ends: no overlap
    recs = [rec(f"s{i}", a, a, [(a + 1, 1)], b) for i, (a, b) in enumerate(spans)]
    assert d.max_in_flight(recs) == 3
    assert d.max_in_flight(ALL) == 1


def test_max_queue_depth_counts_arrived_not_sent() -> None:
    recs = [rec("q0", 0, 0.5, [(20, 1)], 30), rec("q1", 0, 5, [(20, 1)], 30), rec("q2", 0.2, 10, [(20, 1)], 30)]
    assert d.max_queue_depth(recs) == 2  # the 0.5 ms wait is request encoding, below the 1 ms threshold
    assert d.max_queue_depth(recs, min_wait_ns=0) == 3
    assert d.max_queue_depth(ALL) == 1


def test_peak_output_throughput_uses_one_second_buckets() -> None:
    assert d.peak_output_throughput(ALL) == 8  # every token falls in the first second after the first send
    # 1 token at 0.5 s, then 10 tokens spread over 0.6…1.5 s: 4 more in second 0, 6 in second 1.
    spread = rec("p", 0, 0, [(500, 1), (1500, 10)], 1500)
    assert d.peak_output_throughput([spread]) == 6
    assert d.peak_output_throughput([R3]) == 0.0


def test_cache_hit_rate_over_reporting_completed_requests() -> None:
    assert d.cache_hit_rate(ALL) == pytest.approx(50 / 300)  # R4 reports nothing; R3 failed
    assert d.cache_hit_rate([R3, R4]) is None


def test_stats_are_numpy_conventions() -> None:
    s = d.stats([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0
    assert s["std"] == pytest.approx(1.118034, rel=1e-6)  # population std, like bench_serving
    assert s["p90"] == pytest.approx(3.7) and s["p99"] == pytest.approx(3.97)
    assert d.stats([]) == dict.fromkeys(d.STAT_KEYS)


# ----------------------------------------------------------------------------- goodput
def test_meets_slos_needs_success_and_every_slo() -> None:
    assert d.meets_slos(R1, {"ttft": 50, "tpot": 20})
    assert not d.meets_slos(R2, {"ttft": 50})
    assert not d.meets_slos(R3, {"e2el": 1e9})  # failed requests are never good
    assert d.meets_slos(R4, {"tpot": 0.0})  # a single token counts as TPOT 0


def test_request_goodput_is_good_requests_per_second() -> None:
    assert d.request_goodput(ALL, {"ttft": 50}, 2.0) == 1.0  # R1 and R4


def test_slo_attainment_by_metric() -> None:
    by_metric = d.slo_attainment_by_metric(ALL, {"ttft": 50, "tpot": 20, "e2el": 150})
    assert by_metric == {"ttft": 0.5, "tpot": 0.5, "e2el": 0.5}


def test_slo_attainment_block_and_unknown_keys() -> None:
    block = d.slo_attainment(ALL, {"ttft": 50, "e2el": 150}, 0.5)
    assert block["good_requests"] == 2 and block["slo_attainment"] == 0.5 and block["request_goodput"] == 4.0
    assert block["goodput_slos_ms"] == {"ttft": 50, "e2el": 150}
    with pytest.raises(ValueError, match="latency"):
        d.slo_attainment(ALL, {"latency": 1.0}, 1.0)


# ----------------------------------------------------------------------------- over columns
def test_itl_stats_use_completed_requests_only() -> None:
    itl = d.itl_stats(ALL)  # R1: four 10 ms gaps, R2: one 20 ms gap; R3 failed, R4 has one token
    assert itl["mean"] == pytest.approx(12) and itl["median"] == pytest.approx(10)
    assert itl["min"] == pytest.approx(10) and itl["max"] == pytest.approx(20)
    assert d.itl_stats([R3, R4]) == dict.fromkeys(d.STAT_KEYS)


def test_per_request_metrics_over_columns_mark_missing_values_nan() -> None:
    cols = d.as_columns([R1, R3, never_sent()])
    latency = d.server_latency_ms(cols)
    assert latency[0] == pytest.approx(100) and latency[1] == pytest.approx(10) and math.isnan(latency[2])
    assert math.isnan(d.ttft_ms(cols)[1]) and math.isnan(d.tpot_ms(cols)[2])


def test_a_span_that_ends_before_it_starts_is_missing() -> None:
    backwards = rec("b", 10, 20, [(30, 1)], 15)
    assert d.server_latency_ms(backwards) is None and d.ttft_ms(backwards) == 10
    assert d.max_in_flight([backwards]) == 0


def test_tpot_is_missing_without_streaming_never_zero() -> None:
    body = rec("nonstream", 0, 0, [(100, 5)], 100)  # one body: every token at the finish time
    assert d.ttft_ms(body) == 100 and d.tpot_ms(body) is None and d.itl_ms(body) == []
    all_in_first = rec("first", 0, 0, [(50, 5)], 90)  # the first chunk carried every token: decode not observed
    assert d.tpot_ms(all_in_first) is None
    summary = d.stats(d.tpot_ms(d.as_columns([body, all_in_first])))
    assert summary["mean"] is None


def coalesced(record: RequestRecord, count: object) -> RequestRecord:
    record.coalesced_chunks = count  # type: ignore[assignment]  # wrong types are part of the test
    return record


def test_coalesced_chunks_and_their_share() -> None:
    # R1: three token chunks, the last two read together; R2: two chunks, none coalesced
    records = [coalesced(rec("a", 0, 0, [(10, 1), (20, 1), (20, 1)], 30), 2), R2, R3, R4]
    assert d.coalesced_chunks(records) == 2
    assert d.coalesced_chunk_share(records) == pytest.approx(2 / 5)  # R3 failed, R4 has one chunk: not counted
    assert d.itl_ms(records[0]) == pytest.approx([10.0, 0.0])  # the zero gap the coalesced read explains


def test_coalesced_share_is_missing_without_chunked_streams_and_clamps_impossible_counts() -> None:
    assert d.coalesced_chunk_share([R4, rec("body", 0, 0, [(100, 5)], 100)]) is None
    impossible = [
        coalesced(rec("x", 0, 0, [(10, 1), (20, 1)], 30), 3),
        coalesced(rec("y", 0, 0, [(10, 1), (20, 1)], 30), "2"),
    ]
    assert d.coalesced_chunk_share(impossible) is None and d.coalesced_chunks(impossible) == 0
