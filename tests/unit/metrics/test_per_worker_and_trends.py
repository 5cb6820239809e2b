"""Per-worker breakdown, load imbalance and memory trends."""

from __future__ import annotations

import pandas as pd
import pytest

from sglang_test_framework.metrics.collector import MetricsCollector
from sglang_test_framework.metrics.per_worker import load_imbalance, per_worker_table
from sglang_test_framework.metrics.trends import memory_trends
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
