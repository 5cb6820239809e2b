"""The vectorised summary equals a straightforward per-record computation of docs/metrics.md's formulas.

The reference below loops over records in plain Python (the way the summary was computed before it was
vectorised) with the documented missing-value rules; the records are random but seeded and include every
shape the sender produces (streams, multi-token chunks, empty chunks, non-streaming, failures,
never-sent requests, client queueing) plus gaps longer than 4.3 s and values of the wrong type.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sglang_test_framework.metrics import columns
from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.summary import summarize
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 2_000_000_000_000


# ----------------------------------------------------------------------------- random records
def _chunks(rng: random.Random, first_ns: int, tokens: int) -> tuple[list[int], list[int]]:
    times, counts, t = [first_ns], [min(tokens, rng.choice([1, 1, 1, 2, 3]))], first_ns
    left = tokens - counts[0]
    while left > 0:
        t += rng.choice([0, rng.randint(1, 40 * MS), rng.randint(1, 40 * MS), 5_000 * MS])  # some > 4.3 s
        if rng.random() < 0.1:
            times.append(t)
            counts.append(0)  # a chunk without tokens (chat role chunk, usage-only chunk)
            continue
        k = min(left, rng.choice([1, 1, 1, 4, 7]))
        times.append(t)
        counts.append(k)
        left -= k
    return times, counts


def _record(rng: random.Random, i: int) -> RequestRecord:
    scheduled = T0 + rng.randint(0, 20_000) * MS
    arrival = scheduled + rng.randint(0, 3 * MS)
    send = arrival + rng.choice([0, rng.randint(1, 900_000), rng.randint(MS, 400 * MS)])
    tokens = rng.randint(1, 40)
    first = send + rng.randint(5 * MS, 900 * MS)
    times, counts = _chunks(rng, first, tokens) if rng.random() < 0.85 else ([first], [tokens])  # or one body
    kind = rng.random()
    token_chunks = sum(1 for k in counts if k)
    coalesced = rng.choice([0, rng.randint(0, token_chunks), token_chunks + 1, "2"])  # the last two: impossible
    rec = RequestRecord(
        f"r{i}",
        prompt_len=rng.randint(1, 3000),
        scheduled_ns=scheduled,
        arrival_ns=arrival,
        send_ns=send,
        first_token_ns=first,
        finish_ns=times[-1] + rng.randint(0, 2 * MS),
        chunk_ns=times,
        chunk_tokens=counts,
        coalesced_chunks=coalesced,  # type: ignore[arg-type]  # wrong types are part of the test
        output_tokens=sum(counts),
        cached_tokens=rng.choice([None, rng.randint(0, 500)]),
        success=True,
        error_type=None,
    )
    if kind < 0.08:  # failed mid-stream
        cut = rng.randint(0, len(times))
        rec.chunk_ns, rec.chunk_tokens = times[:cut], counts[:cut]
        rec.first_token_ns = times[0] if cut else None
        rec.success, rec.error_type, rec.error = False, rng.choice(["stream", "timeout", None]), "broken"
    elif kind < 0.11:  # cancelled while waiting for a concurrency slot: never sent
        rec.send_ns, rec.first_token_ns, rec.finish_ns = 0, None, None
        rec.chunk_ns, rec.chunk_tokens, rec.output_tokens = [], [], 0
        rec.success, rec.error_type, rec.error = False, "cancelled", "cancelled before completion"
    elif kind < 0.14:  # a value of the wrong type somewhere
        bad_values: list[tuple[str, object]] = [
            ("cached_tokens", "12"),
            ("output_tokens", "9"),
            ("prompt_len", 1.5),
            ("send_ns", "x"),
            ("finish_ns", float(send)),
            ("first_token_ns", -1),
            ("chunk_tokens", "abc"),
            ("error_type", 503),
        ]
        field, value = rng.choice(bad_values)
        setattr(rec, field, value)
    return rec


def random_records(n: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    return [_record(rng, i) for i in range(n)]


# ----------------------------------------------------------------------------- the reference
def _ns(v: object) -> int:
    return v if type(v) is int and 0 < v < 2**63 else 0


def _count(v: object) -> int | None:
    return v if type(v) is int and 0 <= v < 2**31 else None


def _span_ms(start: object, end: object) -> float | None:
    a, b = _ns(start), _ns(end)
    return (b - a) / MS if a and b and b >= a else None


def _token_times(r: RequestRecord) -> list[int]:
    if not isinstance(r.chunk_ns, list) or not isinstance(r.chunk_tokens, list):
        return []
    pairs = [(t, k) for t, k in zip(r.chunk_ns, r.chunk_tokens, strict=False) if k != 0]
    if not pairs or any(_ns(t) == 0 or _count(k) is None for t, k in pairs):
        return []
    if pairs[0][0] != _ns(r.first_token_ns) or any(b[0] < a[0] for a, b in itertools.pairwise(pairs)):
        return []
    out = [pairs[0][0]] * pairs[0][1]
    for (prev, _), (t, k) in itertools.pairwise(pairs):
        out += [prev + (t - prev) * s // k for s in range(1, k + 1)]
    return out


def _token_chunks(r: RequestRecord) -> int:
    """Chunks carrying tokens of a record with valid token data (0 without)."""
    return sum(1 for k in r.chunk_tokens if k) if _token_times(r) else 0


def _later_tokens(r: RequestRecord) -> int:
    """Tokens after the first token-carrying chunk (0 without valid token data)."""
    times = _token_times(r)
    return len(times) - next((k for k in r.chunk_tokens if k), 0) if times else 0


def _coalesced(r: RequestRecord) -> int | None:
    """The record's coalesced-chunk count, None when of the wrong type or more than its chunks."""
    value = _count(r.coalesced_chunks)
    return value if value is not None and value <= _token_chunks(r) else None


def _max_overlap(intervals: list[tuple[int, int]]) -> int:
    events = sorted(ev for start, end in intervals for ev in ((start, 1), (end, -1)))
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(d.STAT_KEYS)
    a = np.asarray(values)
    p90, p95, p99 = np.percentile(a, [90, 95, 99])
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "std": float(a.std()),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def _error_type(r: RequestRecord) -> str:
    if r.error_type is None or r.error_type == "":
        return "unknown"
    return r.error_type if isinstance(r.error_type, str) else str(r.error_type)


def reference_summary(records: list[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.success is True]
    sends = [_ns(r.send_ns) for r in records if _ns(r.send_ns)]
    ends = [_ns(r.finish_ns) for r in records if _ns(r.send_ns) and _ns(r.finish_ns)]
    dur = max(0.0, (max(ends) - min(sends)) / 1e9) if sends and ends else 0.0

    def per_s(amount: float) -> float:
        return amount / dur if dur > 0 else 0.0

    prompt = sum(_count(r.prompt_len) or 0 for r in ok)
    output = sum(_count(r.output_tokens) or 0 for r in ok)
    times = {r.request_id: _token_times(r) for r in ok}
    all_times = [t for ts in times.values() for t in ts]
    origin = min([*sends, *all_times]) if all_times else 0
    peak = float(max(Counter((t - origin) // 10**9 for t in all_times).values())) if all_times else 0.0
    cached = [r for r in ok if _count(r.cached_tokens) is not None and _count(r.prompt_len) is not None]
    cached_prompt = sum(_count(r.prompt_len) or 0 for r in cached)
    streamed = [r for r in ok if _token_chunks(r) > 1 and _coalesced(r) is not None]
    streamed_chunks = sum(_token_chunks(r) for r in streamed)
    coalesced = sum(_coalesced(r) or 0 for r in streamed)
    out: dict[str, Any] = {
        "total_requests": len(records),
        "completed": len(ok),
        "failed": len(records) - len(ok),
        "success_rate": len(ok) / len(records),
        "not_sent": 0,
        "duration_s": dur,
        "total_input_tokens": prompt,
        "total_output_tokens": output,
        "request_throughput": per_s(len(ok)),
        "input_throughput": per_s(prompt),
        "output_throughput": per_s(output),
        "total_throughput": per_s(prompt + output),
        "concurrency": per_s(sum(_span_ms(r.send_ns, r.finish_ns) or 0.0 for r in ok) / 1e3),
        "max_in_flight": _max_overlap(
            [(_ns(r.send_ns), _ns(r.finish_ns)) for r in records if _span_ms(r.send_ns, r.finish_ns) is not None]
        ),
        "max_queue_depth": _max_overlap(
            [
                (_ns(r.arrival_ns), _ns(r.send_ns))
                for r in records
                if _ns(r.arrival_ns) and _ns(r.send_ns) and _ns(r.send_ns) - _ns(r.arrival_ns) >= MS
            ]
        ),
        "peak_output_throughput": peak,
        "cache_hit_rate": sum(_count(r.cached_tokens) or 0 for r in cached) / cached_prompt if cached_prompt else None,
        "coalesced_chunks": coalesced,
        "coalesced_chunk_share": coalesced / streamed_chunks if streamed_chunks else None,
    }
    spans: dict[str, Callable[[RequestRecord], float | None]] = {
        "server_latency": lambda r: _span_ms(r.send_ns, r.finish_ns),
        "total_latency": lambda r: _span_ms(r.arrival_ns, r.finish_ns),
        "queue_time": lambda r: _span_ms(r.arrival_ns, r.send_ns),
        "ttft": lambda r: _span_ms(r.send_ns, r.first_token_ns),
        "tpot": lambda r: (
            ((_span_ms(r.send_ns, r.finish_ns) or 0) - (_span_ms(r.send_ns, r.first_token_ns) or 0))
            / ((_count(r.output_tokens) or 0) - 1)
            if (_count(r.output_tokens) or 0) > 1
            and _later_tokens(r) > 0  # TPOT needs a token observed after the first chunk
            and _span_ms(r.send_ns, r.finish_ns) is not None
            and _span_ms(r.send_ns, r.first_token_ns) is not None
            else None
        ),
        "schedule_lag": lambda r: _span_ms(r.scheduled_ns, r.arrival_ns),
    }
    for name, fn in spans.items():
        values = [fn(r) for r in ok]
        out.update({f"{s}_{name}": v for s, v in _stats([x for x in values if x is not None]).items()})
    first_counts = {r.request_id: next((k for k in r.chunk_tokens if k), 0) for r in ok if times[r.request_id]}
    itls = [
        (b - a) / MS
        for r in ok
        if times[r.request_id]
        for a, b in itertools.pairwise(times[r.request_id][first_counts[r.request_id] - 1 :])
    ]
    out.update({f"{s}_itl": v for s, v in _stats(itls).items()})
    out["errors_by_type"] = dict(Counter(_error_type(r) for r in records if r.success is not True).most_common())
    out["first_errors"] = [f"{r.request_id}: {r.error}" for r in records if r.success is not True][:5]
    return out


# ----------------------------------------------------------------------------- tests
def assert_same_summary(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(got) == set(expected)
    for key, want in expected.items():
        value = got[key]
        if isinstance(want, float) and value is not None:
            assert value == pytest.approx(want, rel=1e-9, abs=1e-9), key
        else:
            assert value == want, key
            assert type(value) is type(want), key


@pytest.fixture(params=[columns.GAP_BLOCK, 7], ids=["default-blocks", "tiny-blocks"])
def block_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run with the summary's default block size and with blocks of 7 gaps / rows (many boundaries)."""
    size = int(request.param)
    monkeypatch.setattr(columns, "GAP_BLOCK", size)
    monkeypatch.setattr(d, "GAP_BLOCK", size)
    return size


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_summary_equals_the_per_record_reference(seed: int, block_size: int) -> None:
    records = random_records(600, seed)
    collector = MetricsCollector()
    for record in records:
        collector.add_record(record)
    got = collector.get_metrics()
    assert got.pop("scrape_errors") == 0
    assert_same_summary(got, reference_summary(records))
    assert got["max_itl"] >= 5_000.0  # gaps over 4.3 s (the uint32 limit) are kept exactly, in the side table
    assert collector.columns().gaps.overflow_ns.size > 0


def test_the_reference_data_has_every_kind_of_record() -> None:
    records = random_records(600, 1)
    summary = reference_summary(records)
    assert 0 < summary["failed"] < summary["total_requests"]
    assert {"cancelled", "stream", "timeout", "unknown"} <= set(summary["errors_by_type"])
    assert summary["max_queue_depth"] > 1 and summary["max_in_flight"] > 1
    assert any(isinstance(r.cached_tokens, str) for r in records)


def test_summarize_takes_records_or_columns_alike() -> None:
    records = random_records(200, 4)
    collector = MetricsCollector()
    for record in records:
        collector.add_record(record)
    assert_same_summary(summarize(records), summarize(collector.columns()))


def test_slo_attainment_over_columns_equals_per_record_checks() -> None:
    records = random_records(300, 5)
    slos = {"ttft": 400.0, "tpot": 20.0, "e2el": 2_000.0}
    block = d.slo_attainment(records, slos, 10.0)
    good = [r for r in records if d.meets_slos(r, slos)]
    assert block["good_requests"] == len(good) and block["slo_attainment"] == len(good) / len(records)
    for key in slos:
        alone = sum(d.meets_slos(r, {key: slos[key]}) for r in records)
        assert block["slo_attainment_by_metric"][key] == alone / len(records)


def test_the_table_equals_per_record_values(block_size: int) -> None:
    records = random_records(300, 6)
    collector = MetricsCollector()
    for record in records:
        collector.add_record(record)
    table = collector.to_dataframe()
    assert table["request_id"].tolist() == [r.request_id for r in records]
    for row, r in zip(table.itertuples(), records, strict=True):
        times = _token_times(r)
        k0 = next((k for k in r.chunk_tokens if k), 0) if times else 0
        itls = [(b - a) / MS for a, b in itertools.pairwise(times[k0 - 1 :])] if times else []
        assert row.mean_itl_ms == pytest.approx(sum(itls) / len(itls) if itls else np.nan, nan_ok=True)
        assert row.max_itl_ms == pytest.approx(max(itls) if itls else np.nan, nan_ok=True)
        latency = _span_ms(r.send_ns, r.finish_ns)
        assert row.server_latency_ms == pytest.approx(np.nan if latency is None else latency, nan_ok=True)
