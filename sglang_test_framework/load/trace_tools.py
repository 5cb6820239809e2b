"""Trace statistics (rate, burstiness, lengths, ideal prefix-cache hit rates) and seeded what-if
transforms (``sglang-test trace stats`` / ``trace synth``; docs/workloads.md, "Trace tools").

Definitions (the same as shared/reference/traces.md §6, so its figures are test oracles):

- mean rate = rows / (last − first arrival); ``gap_cv`` = std / mean of the inter-arrival gaps;
- sliding peak over w = max over every arrival t of the arrivals in [t, t + w), ÷ w; the aligned
  (tumbling) peak uses windows starting at the first arrival; dispersion = variance ÷ mean of the
  tumbling-window counts;
- length percentiles use numpy's linear interpolation;
- the ideal hit rate is the share of input tokens whose block (and every block before it) an earlier
  request already sent: with an unlimited cache, or an LRU cache of a given size in tokens (or blocks)
  where each request first hits its longest resident leading run, then inserts/refreshes all its blocks
  deepest first (a radix tree evicts leaves first). Output tokens and timing are not modelled.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..fileio import write_text_atomic
from ..traces import AZURE_COLUMNS, Trace, TraceRow

__all__ = ["ideal_hit_rate", "rate_stats", "synthesize", "trace_stats", "write_trace"]

_NS_PER_S = 1_000_000_000
_PERCENTILES = (50, 90, 99)


def _length_stats(values: Sequence[int]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    out = {"mean": float(arr.mean())}
    out.update({f"p{q}": float(np.percentile(arr, q)) for q in _PERCENTILES})
    out["max"] = float(arr.max())
    return out


def rate_stats(times_s: Sequence[float] | np.ndarray, windows_s: Sequence[float] = (1.0, 10.0)) -> dict[str, Any]:
    """Offered rate and burstiness of sorted arrival times (s): ``mean_rate``, ``gap_cv`` and, per window
    w, ``peak_rate_{w}s`` (sliding), ``peak_rate_{w}s_aligned``, ``p99_rate_{w}s``, ``empty_share_{w}s``
    and ``dispersion_{w}s`` (tumbling windows from the first arrival). None where undefined."""
    t = np.asarray(times_s, dtype=np.float64)
    span = float(t[-1] - t[0]) if len(t) else 0.0
    gaps = np.diff(t)
    out: dict[str, Any] = {
        "rows": len(t),
        "span_s": span,
        "mean_rate": len(t) / span if span > 0 else None,
        "gap_cv": float(gaps.std() / gaps.mean()) if len(gaps) and gaps.mean() > 0 else None,
    }
    for w in windows_s:
        tag = f"{w:g}s"
        if not len(t):
            continue
        sliding = np.searchsorted(t, t + w, side="left") - np.arange(len(t))
        counts = np.bincount(np.floor((t - t[0]) / w).astype(np.int64))
        out[f"peak_rate_{tag}"] = float(sliding.max()) / w
        out[f"peak_rate_{tag}_aligned"] = float(counts.max()) / w
        out[f"p99_rate_{tag}"] = float(np.percentile(counts, 99)) / w
        out[f"empty_share_{tag}"] = float(np.mean(counts == 0))
        out[f"dispersion_{tag}"] = float(counts.var() / counts.mean())
    return out


def ideal_hit_rate(
    rows: Sequence[TraceRow],
    block_size: int,
    capacity: float = math.inf,
    unit: Literal["tokens", "blocks"] = "tokens",
) -> float | None:
    """Share of input tokens a prefix cache of ``capacity`` (tokens or blocks; ``inf`` = unlimited) serves,
    processing ``rows`` in order (module docstring). None when no row has a token."""
    node_of: dict[tuple[int, tuple[str, int | str]], int] = {}
    lru: OrderedDict[int, int] = OrderedDict()
    used = 0
    hit = total = 0
    for row in rows:
        parent, nodes = -1, []
        for key, size in row.segments(block_size):
            parent = node_of.setdefault((parent, key), len(node_of))
            nodes.append((parent, size))
        total += row.input_length
        for node, size in nodes:
            if node not in lru:
                break
            hit += size
        for node, size in reversed(nodes):
            if node in lru:
                lru.move_to_end(node)
                continue
            lru[node] = size
            used += size if unit == "tokens" else 1
            while used > capacity and lru:
                _, evicted = lru.popitem(last=False)
                used -= evicted if unit == "tokens" else 1
    return hit / total if total else None


def trace_stats(
    rows: Sequence[TraceRow],
    times_s: Sequence[float] | np.ndarray,
    block_size: int,
    cache_tokens: Sequence[float] = (),
) -> dict[str, Any]:
    """Everything ``trace stats`` prints: :func:`rate_stats`, token demand, input/output length stats,
    and ideal hit rates (unlimited and per LRU size in tokens); hit rates are None when the trace records
    no sharing (no hash or prefix ids, e.g. Azure)."""
    out = rate_stats(times_s)
    span = out["span_s"]
    n_in = [r.input_length for r in rows]
    n_out = [r.output_length for r in rows]
    out["input_tokens_per_s"] = sum(n_in) / span if span > 0 else None
    out["output_tokens_per_s"] = sum(n_out) / span if span > 0 else None
    out["input_length"] = _length_stats(n_in)
    out["output_length"] = _length_stats(n_out)
    shared = any(r.hash_ids or r.prefix_id is not None for r in rows)
    out["hit_rate_infinite"] = ideal_hit_rate(rows, block_size) if shared else None
    out["hit_rate_lru"] = {
        f"{size:g}": (ideal_hit_rate(rows, block_size, size) if shared else None) for size in cache_tokens
    }
    return out


# ----------------------------------------------------------------------------------------------- synth
def _scaled_ids(row: TraceRow, n_in: int, length_scale: float, block_size: int, ids: dict[Any, int]) -> tuple[int, ...]:
    """Hash ids of ``row`` stretched to ``n_in`` tokens: new block j is named by the old block that holds
    its last token (and j, and its size), so a shared prefix of L tokens becomes one of about L × scale
    tokens, an id still stands for its whole prefix, and each id keeps one size."""
    out = []
    for j in range(math.ceil(n_in / block_size)):
        size = min(block_size, n_in - j * block_size)
        k = min(int((j * block_size + size - 1) / length_scale) // block_size, len(row.hash_ids) - 1)
        out.append(ids.setdefault((row.hash_ids[k], j, size), len(ids)))
    return tuple(out)


def synthesize(
    trace: Trace, rate_scale: float = 1.0, length_scale: float = 1.0, prefix_reuse: float = 1.0, seed: int = 0
) -> Trace:
    """A transformed copy of ``trace`` (same format), seeded.

    Args:
        trace: The source.
        rate_scale: Arrival rate × this (timestamps ÷ it; 2 = twice the rate).
        length_scale: Input, output and shared-prefix lengths × this (rounded, ≥ 1); hash ids are renamed
            (dense, in order of first use) so that shared prefixes scale with the lengths.
        prefix_reuse: Each row keeps its shared blocks / prefix with this probability, else gets fresh
            ones (1 = unchanged, 0 = no reuse).
        seed: Seeds the ``prefix_reuse`` draws.
    """
    rng = np.random.default_rng(seed)
    ids: dict[Any, int] = {}
    rows = []
    for row in trace.rows:
        n_in = max(1, round(row.input_length * length_scale))
        keep = prefix_reuse >= 1 or rng.random() < prefix_reuse
        hash_ids = _scaled_ids(row, n_in, length_scale, trace.block_size, ids) if row.hash_ids else ()
        if not keep and hash_ids:  # fresh ids: nothing shared with any other row
            hash_ids = tuple(ids.setdefault(("fresh", row.index, j), len(ids)) for j in range(len(hash_ids)))
        rows.append(
            replace(
                row,
                timestamp_ns=round(row.timestamp_ns / rate_scale),
                input_length=n_in,
                output_length=max(1, round(row.output_length * length_scale)),
                hash_ids=hash_ids,
                prefix_id=row.prefix_id if keep else None,
                prefix_length=min(n_in, round(row.prefix_length * length_scale)) if keep else 0,
            )
        )
    return replace(trace, rows=rows)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 6)


def _generic_record(row: TraceRow, trace: Trace) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for col in trace.columns:
        if col in ("timestamp_s", "timestamp_ms"):
            record[col] = _number((trace.origin_ns + row.timestamp_ns) / (1e9 if col == "timestamp_s" else 1e6))
        elif col == "hash_ids":
            record[col] = list(row.hash_ids)
        else:
            record[col] = getattr(row, col)
    return record


def _azure_time(ns: int) -> str:
    seconds, frac = divmod(ns, _NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{frac // 100:07d}"


def write_trace(trace: Trace, path: Path) -> None:
    """Write ``trace`` in its own format (generic: CSV when ``path`` ends in .csv, else JSONL), atomically."""
    lines: list[str] = []
    if trace.format == "mooncake":
        for row in trace.rows:
            ts = _number((trace.origin_ns + row.timestamp_ns) / 1e6)
            record = {"timestamp": ts, "input_length": row.input_length, "output_length": row.output_length}
            lines.append(json.dumps({**record, "hash_ids": list(row.hash_ids)}))
    elif trace.format == "azure":
        lines.append(",".join(AZURE_COLUMNS))
        for row in trace.rows:
            stamp = _azure_time(trace.origin_ns + row.timestamp_ns)
            lines.append(f"{stamp},{row.input_length},{row.output_length}")
    elif path.suffix.lower() == ".csv":
        lines.append(",".join(trace.columns))
        for row in trace.rows:
            record = _generic_record(row, trace)
            cells = [
                " ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else str(v)) for v in record.values()
            ]
            lines.append(",".join(cells))
    else:
        lines.extend(json.dumps(_generic_record(row, trace)) for row in trace.rows)
    write_text_atomic(path, "\n".join(lines) + "\n")
