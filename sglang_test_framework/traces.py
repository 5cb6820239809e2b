"""Request traces: readers for the Mooncake JSONL, Azure LLM inference CSV and generic JSONL/CSV
formats, and the row selection of a replay (window, row range, idle-gap cap, time scale).

Every reader returns a :class:`Trace`: rows sorted by time (stable), timestamps in integer ns after the
first row of the file, and each row's prompt as *segments* — ``(key, tokens)`` pieces whose content is a
pure function of ``(seed, key)`` (``load/trace_replay.py``). Equal keys at the start of two prompts are a
shared prefix, exactly as the trace recorded it. Formats are documented in docs/workloads.md.

A bottom-layer module (it imports only ``config.base`` and ``errors``): the workload config counts the
rows of its replay window with it at validation, so ``num_prompts`` is the number of requests sent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .config.base import decode_utf8
from .errors import DatasetError
from .fileio import jsonl_values

__all__ = [
    "AZURE_COLUMNS",
    "Segment",
    "Trace",
    "TraceFormat",
    "TraceRow",
    "TraceWindow",
    "detect_format",
    "read_trace",
    "select_rows",
]

TraceFormat = Literal["mooncake", "azure", "generic"]
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
Segment = tuple[tuple[str, int | str], int]
"""``((kind, id), tokens)``: kind ``h`` = a hash-id block, ``p`` = a generic shared prefix, ``u`` = a
row's own unshared tokens (id = the row's index in the file)."""

_NS_PER_S = 1_000_000_000
_GENERIC_FORM = (
    "one object/row with timestamp_s or timestamp_ms, input_length, output_length and optionally hash_ids, "
    "prefix_id + prefix_length, session_id"
)


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One request of a trace.

    Attributes:
        timestamp_ns: Arrival after the first row of the file (ns, trace time).
        input_length: Prompt tokens.
        output_length: Generated tokens.
        hash_ids: Block ids (Mooncake / generic), else empty.
        prefix_id: Generic format: rows with the same id share ``prefix_length`` leading tokens.
        prefix_length: Tokens of that shared prefix (0 without one).
        session_id: Generic format: the conversation/session the row belongs to.
        index: Position in the file (0-based, before sorting); keys the row's unshared tokens.
    """

    timestamp_ns: int
    input_length: int
    output_length: int
    hash_ids: tuple[int, ...] = ()
    prefix_id: str | None = None
    prefix_length: int = 0
    session_id: str | None = None
    index: int = 0

    def segments(self, block_size: int) -> list[Segment]:
        """The prompt as segments: hash-id blocks (the last one partial), or prefix + own tokens."""
        if self.hash_ids:
            n = self.input_length
            return [(("h", h), min(block_size, n - i * block_size)) for i, h in enumerate(self.hash_ids)]
        own = self.input_length - self.prefix_length
        out: list[Segment] = []
        if self.prefix_id is not None and self.prefix_length > 0:
            out.append((("p", self.prefix_id), self.prefix_length))
        if own > 0:
            out.append((("u", self.index), own))
        return out


@dataclass(slots=True)
class Trace:
    """A parsed trace file (rows sorted by ``timestamp_ns``, the first at 0).

    Attributes:
        path: The file.
        format: Its format.
        rows: The requests.
        block_size: Tokens per hash-id block.
        origin_ns: What time 0 is on the file's own clock, in ns: the first timestamp of the file (Azure: ns
            since the Unix epoch, UTC); writers add it back.
        columns: Generic format: the columns present (the writer keeps them).
    """

    path: Path
    format: TraceFormat
    rows: list[TraceRow]
    block_size: int = 512
    origin_ns: int = 0
    columns: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TraceWindow:
    """Which rows a replay takes and how their times are scaled (the ``trace_*`` fields of a workload).

    Attributes:
        speedup: Replay this many times faster than recorded (2 = twice the rate, half the span).
        start_s: Skip rows before this trace time (s after the first row).
        max_duration_s: Keep rows before ``start_s + max_duration_s`` (trace time), all when None.
        row_start: First row index (sorted order) kept.
        row_end: One past the last row index kept (None = to the end).
        max_rows: Keep at most this many of the selected rows (the first ones).
        max_idle_gap_s: Shorten every gap between selected rows longer than this (trace time) to it.
    """

    speedup: float = 1.0
    start_s: float = 0.0
    max_duration_s: float | None = None
    row_start: int = 0
    row_end: int | None = None
    max_rows: int | None = None
    max_idle_gap_s: float | None = None


def select_rows(trace: Trace, window: TraceWindow) -> tuple[list[TraceRow], list[float]]:
    """The rows a replay sends and their arrival offsets (s, wall time; the first at 0).

    Order of operations: row range, then time window, then ``max_rows``; gaps are capped in trace time,
    then divided by ``speedup``.
    """
    rows = trace.rows[window.row_start : window.row_end]
    start_ns = round(window.start_s * _NS_PER_S)
    end_ns = math.inf if window.max_duration_s is None else start_ns + window.max_duration_s * _NS_PER_S
    rows = [r for r in rows if start_ns <= r.timestamp_ns < end_ns]
    if window.max_rows is not None:
        rows = rows[: window.max_rows]
    offsets: list[float] = []
    cap_ns = math.inf if window.max_idle_gap_s is None else window.max_idle_gap_s * _NS_PER_S
    elapsed_ns = 0.0
    for i, row in enumerate(rows):
        if i:
            elapsed_ns += min(row.timestamp_ns - rows[i - 1].timestamp_ns, cap_ns)
        offsets.append(elapsed_ns / _NS_PER_S / window.speedup)
    return rows, offsets


# ------------------------------------------------------------------------------------------------ reading
def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the trace ({exc.strerror}); pass a readable file") from exc
    try:
        return decode_utf8(data, path, "the trace")
    except UnicodeError as exc:
        raise DatasetError(str(exc)) from None


def _jsonl_objects(text: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, obj in jsonl_values(text, path):
        if not isinstance(obj, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        yield where, obj


def _csv_rows(text: str, path: Path) -> tuple[list[str], Iterator[tuple[str, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header

    def rows() -> Iterator[tuple[str, dict[str, str]]]:
        for row in reader:
            yield f"{path}:{reader.line_num}", row

    return header, rows()


def detect_format(path: Path) -> TraceFormat:
    """The format of a trace file from its first row: Azure CSV header, Mooncake's ``timestamp`` (ms),
    or the generic ``timestamp_s`` / ``timestamp_ms`` columns."""
    return _detect(_read_text(path), path)


def _detect(text: str, path: Path) -> TraceFormat:
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        try:
            obj = json.loads(first)
        except ValueError:
            raise DatasetError(f"{path}:1: not valid JSON; a JSONL trace has one JSON object per line") from None
        if isinstance(obj, dict) and "timestamp" in obj:
            return "mooncake"
        return "generic"
    header = {h.strip() for h in first.split(",")}
    return "azure" if set(AZURE_COLUMNS) <= header else "generic"


def read_trace(path: Path, fmt: TraceFormat | Literal["auto"] = "auto", block_size: int = 512) -> Trace:
    """Parse a trace file; rows come back sorted by time (stable), the first at 0.

    Raises:
        DatasetError: The file is unreadable, empty or malformed; the message names the line and the fix.
    """
    path = Path(path)
    text = _read_text(path)
    fmt = _detect(text, path) if fmt == "auto" else fmt
    cols: tuple[str, ...] = ()
    if fmt == "mooncake":
        raw = _mooncake(text, path, block_size)
    elif fmt == "azure":
        raw, cols = _azure(text, path), AZURE_COLUMNS
    else:
        raw, cols = _generic(text, path, block_size)
    if not raw:
        raise DatasetError(f"{path}: no rows; a {fmt} trace needs at least one request")
    raw.sort(key=lambda r: r[0])
    first = raw[0][0]
    rows = [replace(row, timestamp_ns=ts - first) for ts, row in raw]
    _check_block_sizes(rows, path, block_size)
    return Trace(path, fmt, rows, block_size, first, cols)


def _int_field(obj: dict[str, Any], name: str, where: str, minimum: int = 1) -> int:
    value = obj.get(name)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or value < minimum:
        raise DatasetError(f"{where}: {name} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _time_ns(obj: dict[str, Any], name: str, where: str, ns_per_unit: float) -> int:
    value = obj.get(name)
    try:
        number = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise DatasetError(f"{where}: {name} must be a finite number ≥ 0, got {value!r}")
    return round(number * ns_per_unit)


def _hash_ids(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, str):
        try:
            value = [int(x) for x in value.split()]
        except ValueError:
            raise DatasetError(f"{where}: hash_ids must be integers separated by spaces, got {value!r}") from None
    if not isinstance(value, list) or not all(type(h) is int and h >= 0 for h in value):
        raise DatasetError(f"{where}: hash_ids must be a list of integers ≥ 0")
    return tuple(value)


def _check_blocks(ids: tuple[int, ...], input_length: int, block_size: int, where: str) -> None:
    if ids and len(ids) != math.ceil(input_length / block_size):
        raise DatasetError(
            f"{where}: {len(ids)} hash_ids for input_length {input_length} at {block_size} tokens per block "
            f"(need ceil({input_length}/{block_size}) = {math.ceil(input_length / block_size)}); "
            "fix the row or set trace_block_size to the trace's block size"
        )


def _mooncake(text: str, path: Path, block_size: int) -> list[tuple[int, TraceRow]]:
    out = []
    for index, (where, obj) in enumerate(_jsonl_objects(text, path)):
        n_in = _int_field(obj, "input_length", where)
        ids = _hash_ids(obj.get("hash_ids", []), where)
        _check_blocks(ids, n_in, block_size, where)
        row = TraceRow(0, n_in, _int_field(obj, "output_length", where), ids, index=index)
        out.append((_time_ns(obj, "timestamp", where, 1e6), row))
    return out


def _azure_time_ns(value: str | None, where: str) -> int:
    """``2023-11-16 18:15:46.6805900`` (UTC, any number of fractional digits) → ns since the epoch."""
    text = (value or "").strip()
    whole, _, frac = text.partition(".")
    try:
        seconds = int(datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())
        frac_ns = int((frac + "000000000")[:9]) if frac else 0
    except ValueError:
        raise DatasetError(
            f"{where}: TIMESTAMP {text!r} is not 'YYYY-MM-DD HH:MM:SS[.fraction]'; fix the row"
        ) from None
    return seconds * _NS_PER_S + frac_ns


def _azure(text: str, path: Path) -> list[tuple[int, TraceRow]]:
    header, rows = _csv_rows(text, path)
    missing = [c for c in AZURE_COLUMNS if c not in header]
    if missing:
        raise DatasetError(
            f"{path}: Azure trace CSV lacks column(s) {', '.join(missing)}; header must be {','.join(AZURE_COLUMNS)}"
        )
    out = []
    for index, (where, row) in enumerate(rows):
        n_in = _int_field(dict(row), "ContextTokens", where)
        n_out = _int_field(dict(row), "GeneratedTokens", where)
        out.append((_azure_time_ns(row.get("TIMESTAMP"), where), TraceRow(0, n_in, n_out, index=index)))
    return out


def _generic_row(obj: dict[str, Any], where: str, index: int, block_size: int) -> tuple[int, TraceRow]:
    units = [
        (name, scale)
        for name, scale in (("timestamp_s", 1e9), ("timestamp_ms", 1e6))
        if obj.get(name) not in (None, "")
    ]
    if len(units) != 1:
        raise DatasetError(
            f"{where}: give exactly one of timestamp_s or timestamp_ms; generic traces have {_GENERIC_FORM}"
        )
    n_in = _int_field(obj, "input_length", where)
    ids = _hash_ids(obj["hash_ids"], where) if obj.get("hash_ids") not in (None, "") else ()
    _check_blocks(ids, n_in, block_size, where)
    prefix_id = obj.get("prefix_id")
    prefix_id = None if prefix_id in (None, "") else str(prefix_id)
    prefix_len = _int_field(obj, "prefix_length", where, 0) if prefix_id is not None else 0
    if prefix_id is not None and (ids or prefix_len > n_in):
        raise DatasetError(f"{where}: prefix_id needs prefix_length ≤ input_length ({n_in}) and no hash_ids")
    session = obj.get("session_id")
    row = TraceRow(
        0,
        n_in,
        _int_field(obj, "output_length", where),
        ids,
        prefix_id,
        prefix_len,
        None if session in (None, "") else str(session),
        index,
    )
    return _time_ns(obj, units[0][0], where, units[0][1]), row


def _generic(text: str, path: Path, block_size: int) -> tuple[list[tuple[int, TraceRow]], tuple[str, ...]]:
    if text.lstrip().startswith("{"):
        items: list[tuple[str, dict[str, Any]]] = list(_jsonl_objects(text, path))
    else:
        _, csv_rows = _csv_rows(text, path)
        items = [(where, dict(row)) for where, row in csv_rows]
    out = [_generic_row(obj, where, i, block_size) for i, (where, obj) in enumerate(items)]
    cols = [
        c
        for c in (
            "timestamp_s",
            "timestamp_ms",
            "input_length",
            "output_length",
            "hash_ids",
            "prefix_id",
            "prefix_length",
            "session_id",
        )
        if any(obj.get(c) not in (None, "") for _, obj in items)
    ]
    prefix_sizes: dict[str, int] = {}
    for (where, _), (_, row) in zip(items, out, strict=True):
        if row.prefix_id is not None and prefix_sizes.setdefault(row.prefix_id, row.prefix_length) != row.prefix_length:
            raise DatasetError(
                f"{where}: prefix_id {row.prefix_id!r} has prefix_length {row.prefix_length} here "
                f"but {prefix_sizes[row.prefix_id]} earlier; one prefix has one length"
            )
    return out, tuple(cols)


def _check_block_sizes(rows: Sequence[TraceRow], path: Path, block_size: int) -> None:
    """One size per hash id: a block id stands for fixed content (traces.md §1.2)."""
    sizes: dict[int, int] = {}
    for row in rows:
        for (_, h), size in row.segments(block_size):
            if row.hash_ids and sizes.setdefault(int(h), size) != size:
                raise DatasetError(
                    f"{path}: hash id {h} is a block of {size} tokens in row {row.index + 1} but of {sizes[int(h)]} "
                    "tokens earlier; one id must always stand for the same block"
                )
