"""PD TTFT stages and per-role utilisation from synthetic ground-truth rows (exact arithmetic)."""

from __future__ import annotations

import math
from typing import Any

from sglang_test_framework.metrics.pd_breakdown import STAGES, pd_breakdown, pd_summary, role_utilisation
from sglang_test_framework.records import RequestRecord

MS = 1_000_000


def _decode_row(rid: str, t0: int, worker: str = "decode_0") -> dict[str, Any]:
    return {
        "rid": rid,
        "role": "decode",
        "status": "ok",
        "worker_id": worker,
        "prefill_worker_id": "prefill_0",
        "bootstrap_room": 1,
        "prompt_tokens": 100,
        "completion_tokens": 4,
        "arrival_ns": t0,
        "prefill_arrival_ns": t0,
        "prefill_bootstrap_done_ns": t0 + 1 * MS,
        "prefill_admitted_ns": t0 + 3 * MS,
        "prefill_end_ns": t0 + 13 * MS,
        "transfer_start_ns": t0 + 14 * MS,
        "transfer_end_ns": t0 + 18 * MS,
        "kv_transfer_modelled_s": 0.004,
        "admitted_ns": t0 + 20 * MS,
        "first_token_step_end_ns": t0 + 27 * MS,
        "finish_ns": t0 + 50 * MS,
    }


def _prefill_row(rid: str, t0: int) -> dict[str, Any]:
    return {
        "rid": rid,
        "role": "prefill",
        "status": "ok",
        "worker_id": "prefill_0",
        "arrival_ns": t0,
        "admitted_ns": t0 + 3 * MS,
        "first_token_step_end_ns": t0 + 13 * MS,
        "finish_ns": t0 + 13 * MS,
    }


def test_stages_add_up_to_the_server_ttft() -> None:
    t0 = 10**12
    rec = RequestRecord(request_id="a", send_ns=t0 - 2 * MS, first_token_ns=t0 + 30 * MS)
    table = pd_breakdown([_decode_row("a", t0), _prefill_row("a", t0)], [rec])
    row = table.iloc[0]
    assert [row[s] for s in STAGES] == [1.0, 2.0, 10.0, 5.0, 2.0, 7.0]
    assert row["server_ttft_ms"] == sum(row[s] for s in STAGES) == 27.0
    assert row["client_ttft_ms"] == 32.0 and row["other_ms"] == 5.0
    assert row["transfer_modelled_ms"] == 4.0


def test_missing_record_leaves_client_ttft_nan_and_failures_are_counted() -> None:
    t0 = 10**12
    failed = {"rid": "b", "role": "decode", "status": "transfer_failed", "arrival_ns": t0, "finish_ns": t0 + MS}
    truth = [_decode_row("a", t0), failed]
    table = pd_breakdown(truth, [])
    assert len(table) == 1 and math.isnan(table.iloc[0]["client_ttft_ms"])
    summary = pd_summary(table, truth)
    assert summary["requests"] == 1 and summary["failed_by_status"] == {"transfer_failed": 1}
    assert summary["client_ttft_ms"] is None and summary["prefill_ms"] == {"mean": 10.0, "p50": 10.0, "p99": 10.0}


def test_role_utilisation_is_the_union_of_busy_intervals() -> None:
    t0 = 10**12
    # two overlapping decodes on decode_0 (20–50 and 30–60 ms) and one prefill (3–13 ms); span 0–60 ms
    truth = [_decode_row("a", t0), _decode_row("b", t0 + 10 * MS), _prefill_row("a", t0)]
    util = role_utilisation(truth)
    assert util["workers"] == {"decode:decode_0": round(40 / 60, 4), "prefill:prefill_0": round(10 / 60, 4)}
    assert util["decode"] == round(40 / 60, 4) and util["prefill"] == round(10 / 60, 4)
    assert role_utilisation([]) == {}
