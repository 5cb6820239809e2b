"""Per-worker breakdown, load imbalance and memory trends."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.per_worker import counter_increase, load_imbalance, per_worker_table
from sglang_test_framework.metrics.trends import LeakRule, memory_trends
from sglang_test_framework.records import RequestRecord

MS = 1_000_000
T0 = 9_000_000_000_000


def rec(i: int, worker: str | None) -> RequestRecord:
    return RequestRecord(
        f"r{i}",
        prompt_len=100,
        arrival_ns=T0,
        send_ns=T0,
        first_token_ns=T0 + 10 * MS,
        finish_ns=T0 + 20 * MS,
        chunk_ns=[T0 + 10 * MS],
        chunk_tokens=[1],
        output_tokens=1,
        cached_tokens=10,
        success=True,
        worker_id=worker,
    )


def test_per_worker_table_and_imbalance() -> None:
    c = MetricsCollector()
    for i, w in enumerate(["a", "a", "a", "b", None]):
        c.add_record(rec(i, w))
    table = per_worker_table(c.to_dataframe(), ["a", "b"])
    assert list(table["requests"]) == [3, 1, 1] and table.iloc[-1]["worker_id"] == "unattributed"
    assert table.iloc[0]["cache_hit_rate"] == pytest.approx(0.1)
    assert load_imbalance(table) == pytest.approx(3 / 2)


def test_memory_trend_flags_steady_growth() -> None:
    rows = [{"t_s": t, "target": "s", "metric": "process_rss_bytes", "value": (100 + 2 * t) * 2**20} for t in range(60)]
    rows += [{"t_s": t, "target": "flat", "metric": "process_rss_bytes", "value": 100 * 2**20} for t in range(60)]
    trends = {t.target: t for t in memory_trends(pd.DataFrame(rows))}
    assert trends["s"].leak_suspected and trends["s"].slope_mb_per_min == pytest.approx(120, rel=1e-3)
    assert not trends["flat"].leak_suspected


def test_counter_increase_handles_a_restart() -> None:
    assert counter_increase([10.0, 25.0, 40.0]) == (30.0, False)
    # the process restarted between the 2nd and 3rd sample: its counter began again at 0
    assert counter_increase([10.0, 25.0, 4.0, 9.0]) == (15.0 + 4.0 + 5.0, True)
    assert counter_increase([50.0, 3.0]) == (3.0, True)  # never negative: the end value is a lower bound
    increase, reset = counter_increase([10.0, math.nan, 12.0])
    assert (increase, reset) == (2.0, False)
    assert math.isnan(counter_increase([math.nan, 5.0])[0])


def test_memory_verdict_states_its_rule_and_thresholds() -> None:
    rule = LeakRule()
    assert rule.describe() == (
        "leak suspected when RSS grows steadily: slope ≥ 1 MiB/min and r² ≥ 0.6 (straight-line fit) and "
        "growth ≥ 5 MiB (last − first sample)"
    )
    small = [
        {"t_s": t, "target": "s", "metric": "process_rss_bytes", "value": (100 + 0.05 * t) * 2**20} for t in range(60)
    ]
    (trend,) = memory_trends(pd.DataFrame(small))
    assert not trend.leak_suspected  # steady (+3 MiB/min, r² = 1) but only +2.95 MiB: under the 5 MiB threshold
    assert trend.verdict == "no leak: growth +2.95 < 5 MiB"
    (strict,) = memory_trends(pd.DataFrame(small), min_growth_mb=1.0)
    assert strict.leak_suspected and strict.verdict.startswith(
        "leak suspected: slope +3.00 ≥ 1 MiB/min, r² +1.00 ≥ 0.6"
    )
