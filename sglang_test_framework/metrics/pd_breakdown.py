"""PD (prefill/decode disaggregation) metrics from the simulator's ground-truth log and the client records.

Each decode worker's truth row carries its request's whole PD path (docs/pd.md): the prefill's arrival,
handshake, admission and end, the KV transfer, the decode's admission and first token. The stages of a
request's time to first token, each in ms (all ``time.monotonic_ns()``, the client's clock):

- ``prefill_bootstrap_ms`` = prefill_bootstrap_done − prefill_arrival (waiting for the decode's handshake,
  which follows the decode's KV preallocation)
- ``prefill_queue_ms`` = prefill_admitted − prefill_bootstrap_done (the prefill scheduler's queue)
- ``prefill_ms`` = prefill_end − prefill_admitted (prefill forward, every chunk)
- ``transfer_ms`` = transfer_end − prefill_end (queueing on the prefill's link + the modelled transfer,
  ``transfer_modelled_ms`` = latency + prompt_tokens × bytes per rank and token ÷ link rate)
- ``decode_wait_ms`` = decode_start − transfer_end (until the next decode step begins)
- ``first_step_ms`` = first_token_step_end − decode_start (the decode step that emits the handoff token)
- ``server_ttft_ms`` = first_token_step_end − prefill_arrival (the sum of the stages above)
- ``other_ms`` = client TTFT − server_ttft_ms (client → router → workers, streaming back)

Per-role utilisation: a worker's busy share = the union of its requests' busy intervals (prefill:
admitted → prefill end; decode: admitted → finish) ÷ the run's span (first arrival → last finish on any
worker); a role's utilisation is the mean over its workers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..records import RequestRecord

__all__ = ["STAGES", "pd_breakdown", "pd_summary", "read_truth_rows", "role_utilisation"]

STAGES = (
    "prefill_bootstrap_ms",
    "prefill_queue_ms",
    "prefill_ms",
    "transfer_ms",
    "decode_wait_ms",
    "first_step_ms",
)
_NS_PER_MS = 1e6


def read_truth_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every row of the given ground-truth logs (missing files and torn lines are skipped)."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _ms(row: Mapping[str, Any], start: str, end: str) -> float:
    a, b = row.get(start), row.get(end)
    return (b - a) / _NS_PER_MS if isinstance(a, int) and isinstance(b, int) else math.nan


def pd_breakdown(truth: Sequence[Mapping[str, Any]], records: Sequence[RequestRecord]) -> pd.DataFrame:
    """One row per completed PD request (a decode truth row with status ok): worker of each leg, the
    TTFT stages (module docstring) and the client's TTFT (``client_ttft_ms``, NaN when the record is
    missing)."""
    by_rid = {r.request_id: r for r in records}
    rows = []
    for row in truth:
        if row.get("role") != "decode" or row.get("status") != "ok":
            continue
        rec = by_rid.get(str(row.get("rid")))
        client_ttft = (
            (rec.first_token_ns - rec.send_ns) / _NS_PER_MS
            if rec is not None and rec.first_token_ns and rec.send_ns
            else math.nan
        )
        out: dict[str, Any] = {
            "rid": row.get("rid"),
            "prefill_worker": row.get("prefill_worker_id"),
            "decode_worker": row.get("worker_id"),
            "bootstrap_room": row.get("bootstrap_room"),
            "prompt_tokens": row.get("prompt_tokens"),
            "completion_tokens": row.get("completion_tokens"),
            "prefill_bootstrap_ms": _ms(row, "prefill_arrival_ns", "prefill_bootstrap_done_ns"),
            "prefill_queue_ms": _ms(row, "prefill_bootstrap_done_ns", "prefill_admitted_ns"),
            "prefill_ms": _ms(row, "prefill_admitted_ns", "prefill_end_ns"),
            "transfer_ms": _ms(row, "prefill_end_ns", "transfer_end_ns"),
            "transfer_modelled_ms": float(row.get("kv_transfer_modelled_s") or math.nan) * 1e3,
            "decode_wait_ms": _ms(row, "transfer_end_ns", "admitted_ns"),
            "first_step_ms": _ms(row, "admitted_ns", "first_token_step_end_ns"),
            "server_ttft_ms": _ms(row, "prefill_arrival_ns", "first_token_step_end_ns"),
            "client_ttft_ms": client_ttft,
        }
        out["other_ms"] = client_ttft - out["server_ttft_ms"]
        rows.append(out)
    return pd.DataFrame(rows)


def _busy_share(intervals: list[tuple[int, int]], span_ns: int) -> float:
    """Union length of ``intervals`` ÷ ``span_ns``."""
    total, end_so_far = 0, None
    for start, end in sorted(intervals):
        if end_so_far is None or start > end_so_far:
            total += end - start
            end_so_far = end
        elif end > end_so_far:
            total += end - end_so_far
            end_so_far = end
    return total / span_ns if span_ns > 0 else math.nan


def role_utilisation(truth: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Busy share per worker and mean per role (module docstring), from every truth row with a role."""
    rows = [r for r in truth if r.get("role") in ("prefill", "decode") and r.get("status") == "ok"]
    if not rows:
        return {}
    first = min(int(r["arrival_ns"]) for r in rows)
    last = max(int(r["finish_ns"]) for r in rows)
    intervals: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for r in rows:
        start = r.get("admitted_ns")
        end = r.get("first_token_step_end_ns") if r["role"] == "prefill" else r.get("finish_ns")
        if isinstance(start, int) and isinstance(end, int) and end >= start:
            intervals.setdefault((r["role"], str(r.get("worker_id"))), []).append((start, end))
    workers = {f"{role}:{w}": round(_busy_share(iv, last - first), 4) for (role, w), iv in sorted(intervals.items())}
    out: dict[str, Any] = {"workers": workers}
    for role in ("prefill", "decode"):
        shares = [v for k, v in workers.items() if k.startswith(role + ":")]
        out[role] = round(sum(shares) / len(shares), 4) if shares else None
    return out


def pd_summary(table: pd.DataFrame, truth: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean / p50 / p99 of each TTFT stage, how many requests took the full PD path, and utilisation."""
    out: dict[str, Any] = {"requests": len(table)}
    for col in (*STAGES, "transfer_modelled_ms", "server_ttft_ms", "client_ttft_ms", "other_ms"):
        values = sorted(float(v) for v in table[col] if not math.isnan(v)) if col in table else []
        out[col] = (
            {
                "mean": round(sum(values) / len(values), 3),
                "p50": round(float(np.percentile(values, 50)), 3),
                "p99": round(float(np.percentile(values, 99)), 3),
            }
            if values
            else None
        )
    failed = [r for r in truth if r.get("role") in ("prefill", "decode") and r.get("status") != "ok"]
    out["failed_by_status"] = {
        s: sum(1 for r in failed if r.get("status") == s) for s in sorted({str(r.get("status")) for r in failed})
    }
    out["utilisation"] = role_utilisation(truth)
    return out
