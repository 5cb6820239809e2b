"""Compact columnar storage of what the run summary needs from each request.

:class:`ColumnStore` folds records one at a time into growing typed arrays (``array.array``: one machine
value per entry, no Python object, handed to numpy without a copy); :class:`RequestColumns` is a numpy
view of them, the input of every run-level metric in :mod:`.definitions`.

Memory: 71 bytes per request (five int64 timestamps, prompt / output / cached token counts, the two
token-data counts and the token-chunk and coalesced-chunk counts as int32, a success byte, an int16
error-type code) and 4 bytes per output token
after each request's first chunk (its gap to the previous token as uint32 ns; a gap of 2³² − 1 ns
(4.3 s) or more is kept exactly in a side table at 24 bytes). Chunk lists, texts and ids are not kept:
they are in ``requests.jsonl`` (:mod:`.record_log`).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..records import NOT_SENT, RequestRecord
from .fields import MISSING_COUNT, as_count, as_ns, as_text, token_data
from .order_stats import PLACEHOLDER

__all__ = [
    "GAP_BLOCK",
    "GAP_SENTINEL",
    "MAX_FIRST_ERRORS",
    "NO_ERROR_TYPE",
    "Bools",
    "ColumnStore",
    "Counts",
    "Floats",
    "GapBlock",
    "Ints",
    "RequestColumns",
    "TokenGaps",
]

Ints = npt.NDArray[np.int64]
Counts = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

GAP_SENTINEL = PLACEHOLDER  # 2³² − 1: a stored gap equal to this is kept exactly in the overflow table
GAP_BLOCK = 1 << 16  # gaps (or rows) the summary processes at once: bounds its temporary memory
MAX_FIRST_ERRORS = 5
NO_ERROR_TYPE = -1
_MAX_ERROR_TYPES = 2**15 - 1


@dataclass(frozen=True, eq=False)
class TokenGaps:
    """Every request's token gaps (ns, :func:`.fields.token_gaps_ns`), concatenated in row order.

    Attributes:
        values: uint32 gaps; :data:`GAP_SENTINEL` marks one stored in the overflow table.
        overflow_index: positions in ``values`` of the gaps ≥ :data:`GAP_SENTINEL` (ascending).
        overflow_ns: those gaps, exactly.
        overflow_row: the row (request) of each.
    """

    values: npt.NDArray[np.uint32]
    overflow_index: Ints
    overflow_ns: Ints
    overflow_row: Ints

    def exact(self, start: int, stop: int) -> Ints:
        """The gaps ``values[start:stop]`` as int64, overflowed ones restored."""
        out = self.values[start:stop].astype(np.int64)
        lo, hi = np.searchsorted(self.overflow_index, [start, stop])
        out[self.overflow_index[lo:hi] - start] = self.overflow_ns[lo:hi]
        return out


@dataclass(frozen=True, eq=False)
class GapBlock:
    """Rows ``start``…``stop − 1``; row ``start + i`` has the gaps ``values[offsets[i]:offsets[i + 1]]``."""

    start: int
    stop: int
    offsets: Ints

    @property
    def gap_start(self) -> int:
        """Position of the block's first gap."""
        return int(self.offsets[0])

    @property
    def gap_stop(self) -> int:
        """Position after the block's last gap."""
        return int(self.offsets[-1])


@dataclass(frozen=True, eq=False)
class RequestColumns:
    """One row per request, in the order added; a timestamp of 0 is "not recorded", a count of -1 is
    missing (:mod:`.fields`).

    Attributes:
        scheduled_ns, arrival_ns, send_ns, first_token_ns, finish_ns: int64 timestamps.
        prompt_len, output_tokens, cached_tokens: token counts (``cached_tokens`` -1: not reported).
        success: whether the request succeeded.
        error_code: index into ``error_types`` of the record's ``error_type`` (-1: none).
        first_chunk_tokens: tokens at ``first_token_ns`` (0: no token data).
        gap_count: tokens after the first chunk, i.e. this row's entries in ``gaps``.
        token_chunks: chunks that carried tokens (0: no token data).
        coalesced_chunks: of those, the ones read in one socket read with another (-1: not known, or
            more than ``token_chunks``, which cannot be).
        gaps: the token gaps of every row (:class:`TokenGaps`).
        first_errors: ``"<request_id>: <error>"`` of the first failed requests (at most 5).
        not_sent: records of requests a virtual user never sent because it left (``records.NOT_SENT``):
            counted here, given no row, so no metric sees them.
    """

    scheduled_ns: Ints
    arrival_ns: Ints
    send_ns: Ints
    first_token_ns: Ints
    finish_ns: Ints
    prompt_len: Counts
    output_tokens: Counts
    cached_tokens: Counts
    success: Bools
    error_code: npt.NDArray[np.int16]
    error_types: tuple[str, ...]
    first_chunk_tokens: Counts
    gap_count: Counts
    token_chunks: Counts
    coalesced_chunks: Counts
    gaps: TokenGaps
    first_errors: tuple[str, ...]
    not_sent: int = 0

    @classmethod
    def from_records(cls, records: Iterable[RequestRecord]) -> RequestColumns:
        """Columns of ``records`` (never raises on a bad value: it counts as missing)."""
        store = ColumnStore()
        for record in records:
            store.append(record)
        return store.view()

    def __len__(self) -> int:
        return int(self.send_ns.size)

    def select(self, rows: Bools) -> RequestColumns:
        """A copy holding only the rows where ``rows`` is True (in order), with their token gaps.

        ``first_errors`` and ``error_types`` are kept whole: they name the run's first failures, not
        the selection's."""
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(self.gap_count, dtype=np.int64, out=offsets[1:])
        counts = self.gap_count[rows].astype(np.int64)
        new_offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=new_offsets[1:])
        starts = offsets[:-1][rows]
        gap_index = np.repeat(starts - new_offsets[:-1], counts) + np.arange(int(new_offsets[-1]), dtype=np.int64)
        new_row = np.cumsum(rows, dtype=np.int64) - 1
        kept = rows[self.gaps.overflow_row]
        old_row = self.gaps.overflow_row[kept]
        overflow_at = new_offsets[new_row[old_row]] + (self.gaps.overflow_index[kept] - offsets[old_row])
        return RequestColumns(
            scheduled_ns=self.scheduled_ns[rows],
            arrival_ns=self.arrival_ns[rows],
            send_ns=self.send_ns[rows],
            first_token_ns=self.first_token_ns[rows],
            finish_ns=self.finish_ns[rows],
            prompt_len=self.prompt_len[rows],
            output_tokens=self.output_tokens[rows],
            cached_tokens=self.cached_tokens[rows],
            success=self.success[rows],
            error_code=self.error_code[rows],
            error_types=self.error_types,
            first_chunk_tokens=self.first_chunk_tokens[rows],
            gap_count=self.gap_count[rows],
            token_chunks=self.token_chunks[rows],
            coalesced_chunks=self.coalesced_chunks[rows],
            gaps=TokenGaps(
                self.gaps.values[gap_index],
                overflow_at.astype(np.int64),
                self.gaps.overflow_ns[kept],
                new_row[old_row],
            ),
            first_errors=self.first_errors,
            not_sent=self.not_sent,
        )

    def gap_blocks(self) -> Iterator[GapBlock]:
        """Consecutive row ranges covering every row, each holding about :data:`GAP_BLOCK` gaps (more
        only for a single request with more), with their gap offsets: what the summary processes at
        once, so that its temporaries stay small however long the run."""
        base = 0
        for lo in range(0, len(self), GAP_BLOCK):
            counts = self.gap_count[lo : lo + GAP_BLOCK]
            offsets = np.empty(counts.size + 1, dtype=np.int64)
            offsets[0] = base
            np.cumsum(counts, dtype=np.int64, out=offsets[1:])
            offsets[1:] += base
            cuts = np.searchsorted(offsets, np.arange(base + GAP_BLOCK, offsets[-1], GAP_BLOCK), side="right") - 1
            bounds = [0, *sorted({int(c) for c in cuts if 0 < c < counts.size}), counts.size]
            for start, stop in itertools.pairwise(bounds):
                yield GapBlock(lo + start, lo + stop, offsets[start : stop + 1])
            base = int(offsets[-1])


class _Column:
    """A growing ``array.array`` (amortised appends in place). If a numpy view of an earlier
    :meth:`ColumnStore.view` is still alive, the array cannot grow: the column then moves to a copy and
    leaves that view intact."""

    __slots__ = ("data",)

    def __init__(self, typecode: str) -> None:
        self.data = array(typecode)

    def append(self, value: int) -> None:
        try:
            self.data.append(value)
        except BufferError:
            self.data = self.data[:]
            self.data.append(value)

    def extend(self, values: list[int]) -> None:
        try:
            self.data.extend(values)
        except BufferError:
            self.data = self.data[:]
            self.data.extend(values)

    def numpy(self, dtype: type[np.generic]) -> npt.NDArray[Any]:
        return np.frombuffer(self.data, dtype=dtype) if len(self.data) else np.zeros(0, dtype=dtype)


class ColumnStore:
    """Growing columns of requests; :meth:`append` folds a record in, :meth:`view` reads them."""

    def __init__(self) -> None:
        self._scheduled_ns = _Column("q")
        self._arrival_ns = _Column("q")
        self._send_ns = _Column("q")
        self._first_token_ns = _Column("q")
        self._finish_ns = _Column("q")
        self._prompt_len = _Column("i")
        self._output_tokens = _Column("i")
        self._cached_tokens = _Column("i")
        self._first_chunk_tokens = _Column("i")
        self._gap_count = _Column("i")
        self._token_chunks = _Column("i")
        self._coalesced_chunks = _Column("i")
        self._success = _Column("B")
        self._error_code = _Column("h")
        self._gaps = _Column("I")
        self._overflow_index = _Column("q")
        self._overflow_ns = _Column("q")
        self._overflow_row = _Column("q")
        self._error_types: dict[str, int] = {}
        self._first_errors: list[str] = []
        self._not_sent = 0

    def _row_columns(self) -> tuple[_Column, ...]:
        return (
            self._scheduled_ns,
            self._arrival_ns,
            self._send_ns,
            self._first_token_ns,
            self._finish_ns,
            self._prompt_len,
            self._output_tokens,
            self._cached_tokens,
            self._first_chunk_tokens,
            self._gap_count,
            self._token_chunks,
            self._coalesced_chunks,
            self._success,
            self._error_code,
        )

    def __len__(self) -> int:
        # The shortest column: a row torn by an interrupt inside append() is not counted.
        return min(len(c.data) for c in self._row_columns())

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (what they use, not the arrays' spare capacity)."""
        columns = (*self._row_columns(), self._gaps, self._overflow_index, self._overflow_ns, self._overflow_row)
        return sum(len(c.data) * c.data.itemsize for c in columns)

    def append(self, record: RequestRecord) -> None:
        """Fold ``record`` in; a value of the wrong type or range counts as missing (never raises). A
        not-sent record only counts (:attr:`RequestColumns.not_sent`)."""
        if record.error_type == NOT_SENT:
            self._not_sent += 1
            return
        first_token_ns = as_ns(record.first_token_ns)
        first_tokens, gaps, chunks = token_data(first_token_ns, record.chunk_ns, record.chunk_tokens)
        coalesced = as_count(getattr(record, "coalesced_chunks", 0))
        success = record.success is True or (isinstance(record.success, np.bool_) and bool(record.success))
        self._append_gaps(gaps)  # before the row, so that every counted row has its gaps
        self._scheduled_ns.append(as_ns(record.scheduled_ns))
        self._arrival_ns.append(as_ns(record.arrival_ns))
        self._send_ns.append(as_ns(record.send_ns))
        self._first_token_ns.append(first_token_ns)
        self._finish_ns.append(as_ns(record.finish_ns))
        self._prompt_len.append(as_count(record.prompt_len))
        self._output_tokens.append(as_count(record.output_tokens))
        self._cached_tokens.append(as_count(record.cached_tokens))
        self._first_chunk_tokens.append(first_tokens)
        self._gap_count.append(len(gaps))
        self._token_chunks.append(chunks)
        self._coalesced_chunks.append(coalesced if coalesced <= chunks else MISSING_COUNT)
        self._success.append(1 if success else 0)
        self._error_code.append(self._error_type_code(record.error_type))
        if not success and len(self._first_errors) < MAX_FIRST_ERRORS:
            self._first_errors.append(f"{as_text(record.request_id)}: {as_text(record.error)}")

    def _error_type_code(self, value: object) -> int:
        name = as_text(value)
        if name is None:
            return NO_ERROR_TYPE
        code = self._error_types.get(name)
        if code is None:
            if len(self._error_types) >= _MAX_ERROR_TYPES:  # corrupt data: far more types than exist
                return NO_ERROR_TYPE
            code = self._error_types[name] = len(self._error_types)
        return code

    def _append_gaps(self, gaps: list[int]) -> None:
        if gaps and max(gaps) >= GAP_SENTINEL:
            start = len(self._gaps.data)
            for i, gap in enumerate(gaps):
                if gap >= GAP_SENTINEL:
                    self._overflow_index.append(start + i)
                    self._overflow_ns.append(gap)
                    self._overflow_row.append(len(self._gap_count.data))
            gaps = [min(gap, GAP_SENTINEL) for gap in gaps]
        self._gaps.extend(gaps)

    def view(self) -> RequestColumns:
        """The rows so far as numpy arrays (no copy; later appends do not change this view)."""
        n = len(self)
        gap_count = self._gap_count.numpy(np.int32)[:n]
        total_gaps = int(gap_count.sum(dtype=np.int64))
        overflow_index = self._overflow_index.numpy(np.int64)
        kept = int(np.searchsorted(overflow_index, total_gaps))
        return RequestColumns(
            scheduled_ns=self._scheduled_ns.numpy(np.int64)[:n],
            arrival_ns=self._arrival_ns.numpy(np.int64)[:n],
            send_ns=self._send_ns.numpy(np.int64)[:n],
            first_token_ns=self._first_token_ns.numpy(np.int64)[:n],
            finish_ns=self._finish_ns.numpy(np.int64)[:n],
            prompt_len=self._prompt_len.numpy(np.int32)[:n],
            output_tokens=self._output_tokens.numpy(np.int32)[:n],
            cached_tokens=self._cached_tokens.numpy(np.int32)[:n],
            success=self._success.numpy(np.bool_)[:n],
            error_code=self._error_code.numpy(np.int16)[:n],
            error_types=tuple(self._error_types),
            first_chunk_tokens=self._first_chunk_tokens.numpy(np.int32)[:n],
            gap_count=gap_count,
            token_chunks=self._token_chunks.numpy(np.int32)[:n],
            coalesced_chunks=self._coalesced_chunks.numpy(np.int32)[:n],
            gaps=TokenGaps(
                self._gaps.numpy(np.uint32)[:total_gaps],
                overflow_index[:kept],
                self._overflow_ns.numpy(np.int64)[:kept],
                self._overflow_row.numpy(np.int64)[:kept],
            ),
            first_errors=tuple(self._first_errors),
            not_sent=self._not_sent,
        )
