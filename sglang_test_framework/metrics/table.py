"""The per-request table (``requests.csv``): metrics from the run's columns, vectorised, and the
identity and outcome fields read back from the records (``requests.jsonl``) in one pass."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..records import RequestRecord
from . import definitions as d
from .columns import Counts, Floats, Ints, RequestColumns
from .fields import as_float, as_int, as_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REQUEST_COLUMNS", "request_table"]

REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id",
    "api_type",
    "worker_id",
    "group_id",
    "turn",
    "workload",
    "success",
    "error_type",
    "error",
    "http_status",
    "finish_reason",
    "scheduled_s",
    "arrival_s",
    "send_s",
    "first_token_s",
    "finish_s",
    "prompt_len",
    "expected_output_len",
    "output_tokens",
    "cached_tokens",
    "num_chunks",
    "coalesced_chunks",
    "ttft_ms",
    "tpot_ms",
    "mean_itl_ms",
    "max_itl_ms",
    "server_latency_ms",
    "total_latency_ms",
    "queue_time_ms",
    "schedule_lag_ms",
    "server_e2e_latency_ms",
    "server_queue_time_ms",
    "num_retractions",
)
# Fields read from the records: column → how a raw value is read (a wrong value is missing).
_RECORD_FIELDS = {
    "request_id": as_text,
    "api_type": as_text,
    "worker_id": as_text,
    "group_id": as_int,
    "turn": as_int,
    "workload": as_text,
    "error": as_text,
    "http_status": as_int,
    "finish_reason": as_text,
    "expected_output_len": as_int,
    "server_e2e_latency_s": as_float,
    "server_queue_time_s": as_float,
    "num_retractions": as_int,
    "coalesced_chunks": as_int,
}


def _seconds(t_ns: Ints, t0_ns: int) -> Floats:
    return np.where(t_ns > 0, (t_ns - t0_ns) / d.NS_PER_S, np.nan)


def _count_column(values: Counts) -> Any:
    """Counts as int64, or as float with NaN for the missing ones (as pandas reads None)."""
    return values.astype(np.int64) if bool((values >= 0).all()) else np.where(values >= 0, values, np.nan)


def _itl_per_request(c: RequestColumns) -> tuple[Floats, Floats]:
    """Mean and max ITL (ms) of each request (NaN without ITLs), block by block."""
    mean, peak = np.full(len(c), np.nan), np.full(len(c), np.nan)
    for block in c.gap_blocks():
        counts = c.gap_count[block.start : block.stop]
        rows = np.flatnonzero(counts > 0)
        if rows.size == 0:
            continue
        gaps = c.gaps.exact(block.gap_start, block.gap_stop)
        first = block.offsets[:-1][rows] - block.gap_start
        mean[block.start + rows] = np.add.reduceat(gaps, first) / counts[rows] / d.NS_PER_MS
        peak[block.start + rows] = np.maximum.reduceat(gaps, first) / d.NS_PER_MS
    return mean, peak


def _record_fields(records: Iterable[RequestRecord], rows: int) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: [] for name in (*_RECORD_FIELDS, "num_chunks")}
    for record in itertools.islice(records, rows):  # a record torn from the columns by an interrupt: left out
        for name, read in _RECORD_FIELDS.items():
            out[name].append(read(getattr(record, name)))
        out["num_chunks"].append(len(record.chunk_ns) if isinstance(record.chunk_ns, (list, tuple)) else 0)
    return out


def request_table(c: RequestColumns, records: Iterable[RequestRecord], t0_ns: int) -> pd.DataFrame:
    """One row per request with :data:`REQUEST_COLUMNS`: timestamps as seconds since ``t0_ns`` (NaN when
    not recorded), per-request metrics in ms, token counts, ids and error fields. ``records`` are the
    records ``c`` was built from, in the same order."""
    import pandas as pd  # only the table needs pandas; the summary path does not load it

    fields = _record_fields(records, len(c))
    mean_itl, max_itl = _itl_per_request(c)
    error_types = np.array([None, *c.error_types], dtype=object)
    columns: dict[str, Any] = {
        **{name: fields[name] for name in ("request_id", "api_type", "worker_id", "group_id", "turn", "workload")},
        "success": c.success.copy(),
        "error_type": error_types[c.error_code.astype(np.int64) + 1],
        "error": fields["error"],
        "http_status": fields["http_status"],
        "finish_reason": fields["finish_reason"],
        "scheduled_s": _seconds(c.scheduled_ns, t0_ns),
        "arrival_s": _seconds(c.arrival_ns, t0_ns),
        "send_s": _seconds(c.send_ns, t0_ns),
        "first_token_s": _seconds(c.first_token_ns, t0_ns),
        "finish_s": _seconds(c.finish_ns, t0_ns),
        "prompt_len": _count_column(c.prompt_len),
        "expected_output_len": fields["expected_output_len"],
        "output_tokens": _count_column(c.output_tokens),
        "cached_tokens": _count_column(c.cached_tokens),
        "num_chunks": fields["num_chunks"],
        "coalesced_chunks": fields["coalesced_chunks"],
        "ttft_ms": d.ttft_ms(c),
        "tpot_ms": d.tpot_ms(c),
        "mean_itl_ms": mean_itl,
        "max_itl_ms": max_itl,
        "server_latency_ms": d.server_latency_ms(c),
        "total_latency_ms": d.total_latency_ms(c),
        "queue_time_ms": d.queue_time_ms(c),
        "schedule_lag_ms": d.schedule_lag_ms(c),
        "server_e2e_latency_ms": [None if v is None else v * 1e3 for v in fields["server_e2e_latency_s"]],
        "server_queue_time_ms": [None if v is None else v * 1e3 for v in fields["server_queue_time_s"]],
        "num_retractions": fields["num_retractions"],
    }
    return pd.DataFrame(columns, columns=list(REQUEST_COLUMNS))
