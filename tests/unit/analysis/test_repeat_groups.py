"""Repeated runs combined: counts totalled, numbers averaged, mean ± 95% CI per key metric."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from sglang_test_framework.analysis.repeats import (
    aggregate_repeats,
    combine_summaries,
    format_repeats_report,
    mean_ci_display,
    repeat_stats,
    repeats_table,
)
from sglang_test_framework.analysis.stats import t_quantile_975
from sglang_test_framework.records import RequestRecord
from sglang_test_framework.results import ChainedRecords


def summary(throughput: float, completed: int, failed: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "total_requests": completed + failed,
        "completed": completed,
        "failed": failed,
        "success_rate": completed / (completed + failed),
        "request_throughput": throughput,
        "mean_tpot": None,
        "cache_hit_rate": 0.5,
        "errors_by_type": {"http": failed} if failed else {},
        "first_errors": [f"r{i}: HTTP 500" for i in range(failed)],
        "backend": "sim",
        **extra,
    }


def test_counts_are_totalled_and_other_numbers_averaged() -> None:
    combined = combine_summaries([summary(10.0, 9, 1), summary(12.0, 10), summary(14.0, 8, 2)])
    assert combined["repeats"] == 3
    assert combined["completed"] == 27 and combined["failed"] == 3 and combined["total_requests"] == 30
    assert combined["success_rate"] == pytest.approx(27 / 30)  # over all requests, not a mean of rates
    assert combined["request_throughput"] == pytest.approx(12.0) and combined["cache_hit_rate"] == 0.5
    assert combined["mean_tpot"] is None  # undefined in every repeat: stays undefined
    assert combined["errors_by_type"] == {"http": 3} and combined["backend"] == "sim"
    assert combined["first_errors"][0] == "rep-0: r0: HTTP 500" and combined["first_errors"][1].startswith("rep-2")
    stats = combined["repeat_stats"]["request_throughput"]
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(12.0) and stats["values"] == [10.0, 12.0, 14.0]
    assert stats["ci95"] == pytest.approx(t_quantile_975(2) * 2.0 / math.sqrt(3))
    assert stats["min"] == 10.0 and stats["max"] == 14.0
    assert "mean_tpot" not in combined["repeat_stats"]  # no repeat has it


def test_values_that_differ_between_repeats_are_left_out() -> None:
    combined = combine_summaries([summary(1.0, 1, status="completed"), summary(2.0, 1, status="interrupted")])
    assert "status" not in combined
    same = combine_summaries([summary(1.0, 1, tag="x", max_concurrency=8), summary(2.0, 1, tag="x", max_concurrency=8)])
    assert same["tag"] == "x" and same["max_concurrency"] == 8 and type(same["max_concurrency"]) is int


def test_stats_of_one_repeat_and_missing_values() -> None:
    one = repeat_stats([5.0])
    assert one["mean"] == 5.0 and one["ci95"] is None and one["std"] is None
    gaps = repeat_stats([1.0, None, math.nan, 3.0])
    assert gaps["n"] == 2 and gaps["values"] == [1.0, None, None, 3.0] and gaps["mean"] == 2.0
    assert repeat_stats([None])["mean"] is None


def test_console_block_and_table() -> None:
    combined = combine_summaries([summary(10.0, 9, 1), summary(12.0, 10)])
    text = format_repeats_report(combined, {"name": "node-sim", "repeat_seed": "same"})
    assert "Repeated runs: node-sim" in text and "same seed" in text and "95% confidence interval" in text
    assert "Requests (all repeats): 19 of 20 completed" in text
    line = next(x for x in text.splitlines() if x.startswith("request_throughput"))
    assert line.split()[:2] == ["request_throughput", "11.00"] and "10.00" in line and "12.00" in line
    hit = next(x for x in text.splitlines() if x.startswith("cache_hit_rate"))
    assert "50.00%" in hit
    increment = format_repeats_report(combined, {"name": "n", "repeat_seed": "increment"})
    assert "seed + k" in increment
    table = repeats_table([summary(10.0, 9, 1), summary(12.0, 10)])
    assert list(table.index) == ["rep-0", "rep-1"] and list(table["completed"]) == [9, 10]


def test_sweep_points_aggregate_their_repeats() -> None:
    runs = pd.DataFrame(
        {
            "point": ["rate=1,rep=0", "rate=1,rep=1", "rate=2,rep=0", "rate=2,rep=1"],
            "rate": [1, 1, 2, 2],
            "request_throughput": [1.0, 3.0, 5.0, None],
            "status": ["completed", "completed", "completed", "failed"],
            "error": [None, None, None, "boom"],
        }
    )
    table = aggregate_repeats(runs, ["rate"], ["request_throughput"])
    assert list(table["point"]) == ["rate=1", "rate=2"] and list(table["repeats"]) == [2, 1]
    assert list(table["status"]) == ["completed", "partial 1/2"] and table["error"].isna().tolist() == [True, False]
    assert table["request_throughput"].tolist() == [2.0, 5.0]
    assert table.loc[0, "request_throughput_ci95"] == pytest.approx(t_quantile_975(1) * math.sqrt(2) / math.sqrt(2))
    assert math.isnan(table["request_throughput_ci95"][1])
    shown = mean_ci_display(table)
    assert shown["request_throughput"].tolist() == ["2.00 ±12.71", "5.00"]
    assert "request_throughput_ci95" not in shown


def record(rid: str) -> RequestRecord:
    return RequestRecord(rid)


def test_chained_records_read_every_repeat_in_order() -> None:
    chained = ChainedRecords([[record("a"), record("b")], [], [record("c")]])
    assert len(chained) == 3 and [r.request_id for r in chained] == ["a", "b", "c"]
    assert chained[2].request_id == "c" and chained[-1].request_id == "c"
    assert [r.request_id for r in chained[1:]] == ["b", "c"]
    with pytest.raises(IndexError):
        chained[3]
    assert len(ChainedRecords([])) == 0
