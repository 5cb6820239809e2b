"""Clock alignment of remote client shards: min-RTT offset, its uncertainty, records shifted onto the
driver's timeline with per-request differences (TTFT, ITL) unchanged."""

from __future__ import annotations

import pytest

from sglang_test_framework.records import RequestRecord
from sglang_test_framework.shards.clocks import ClockSample, align_clocks, shift_record

OFFSET_NS = 7_000_000_000  # the shard's clock runs 7 s ahead of the driver's


def _ping(sent_ns: int, rtt_ns: int, remote_at_ns: int) -> ClockSample:
    """A ping whose reply was read on the shard at driver time ``remote_at_ns``."""
    return ClockSample(sent_ns, remote_at_ns + OFFSET_NS, remote_at_ns + OFFSET_NS + 10**18, sent_ns + rtt_ns)


def test_the_shortest_round_trip_wins_and_bounds_the_error() -> None:
    samples = [
        _ping(1_000, 900_000, 1_000 + 800_000),  # slow, asymmetric: its midpoint is 350 µs off
        _ping(2_000_000, 40_000, 2_000_000 + 30_000),  # fast: midpoint 10 µs off
        _ping(3_000_000, 300_000, 3_000_000 + 150_000),
    ]
    clock = align_clocks(samples, same_machine=False)
    assert clock.rtt_ns == 40_000 and clock.uncertainty_ns == 20_000 and clock.samples == 3
    assert clock.offset_ns == OFFSET_NS + 10_000
    assert abs(clock.offset_ns - OFFSET_NS) <= clock.uncertainty_ns
    assert clock.remote_wall_minus_monotonic_ns == 10**18
    assert clock.to_driver_ns(clock.to_remote_ns(123_456)) == 123_456


def test_on_the_drivers_machine_the_clocks_are_one() -> None:
    clock = align_clocks([_ping(0, 50_000, 25_000)], same_machine=True)
    assert (clock.offset_ns, clock.uncertainty_ns, clock.same_machine) == (0, 0, True)


def test_bad_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one ping"):
        align_clocks([], same_machine=False)
    with pytest.raises(ValueError, match="came back before it was sent"):
        align_clocks([ClockSample(10, 0, 0, 5)], same_machine=False)


def test_shifted_records_keep_every_per_request_difference() -> None:
    base = OFFSET_NS + 5_000_000
    record = RequestRecord(
        request_id="r",
        scheduled_ns=base,
        arrival_ns=base + 10,
        send_ns=base + 20,
        first_token_ns=base + 1_000,
        finish_ns=base + 5_000,
        chunk_ns=[base + 1_000, base + 3_000, base + 5_000],
        chunk_tokens=[1, 1, 1],
        success=True,
    )
    assert record.first_token_ns is not None and record.finish_ns is not None
    ttft, e2e = record.first_token_ns - record.send_ns, record.finish_ns - record.arrival_ns
    gaps = [b - a for a, b in zip(record.chunk_ns, record.chunk_ns[1:], strict=False)]
    shifted = shift_record(record, OFFSET_NS)
    assert shifted.scheduled_ns == 5_000_000
    assert shifted.first_token_ns is not None and shifted.finish_ns is not None
    assert shifted.first_token_ns - shifted.send_ns == ttft
    assert shifted.finish_ns - shifted.arrival_ns == e2e
    assert [b - a for a, b in zip(shifted.chunk_ns, shifted.chunk_ns[1:], strict=False)] == gaps
    assert shifted.chunk_ns[0] == shifted.first_token_ns


def test_unset_timestamps_stay_unset() -> None:
    record = shift_record(RequestRecord(request_id="failed", scheduled_ns=OFFSET_NS), OFFSET_NS)
    assert (record.scheduled_ns, record.arrival_ns, record.send_ns) == (0, 0, 0)
    assert record.first_token_ns is None and record.finish_ns is None and record.chunk_ns == []
