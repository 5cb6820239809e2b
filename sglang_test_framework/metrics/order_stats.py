"""Exact statistics of millions of uint32 values streamed in blocks, without sorting or copying them all.

Order statistics come from a two-level radix count: a histogram of the high 16 bits finds the bucket of
each wanted rank, a histogram of the low 16 bits inside that bucket finds the value. Two passes over the
blocks (the first also sums, the second also sums squares) hold one block's temporaries at a time, so
the token gaps of a long run (4 bytes each) are summarised in place. Percentiles interpolate linearly
between order statistics, as numpy's default does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

__all__ = ["PLACEHOLDER", "Blocks", "exact_stats", "median", "percentile"]

Blocks = Callable[[], Iterator[npt.NDArray[np.uint32]]]
PLACEHOLDER = 2**32 - 1
_BUCKETS = 1 << 16
_LOW_MASK = _BUCKETS - 1
_STAT_KEYS = ("mean", "median", "std", "p90", "p95", "p99", "min", "max")


def percentile(value_at: Callable[[int], float], n: int, q: float) -> float:
    """numpy's default (linear) percentile ``q`` (0–100) of ``n`` values, ``value_at(i)`` being the
    i-th smallest: the same arithmetic as ``np.percentile``."""
    virtual = float(np.true_divide(q, 100)) * (n - 1)
    lo = math.floor(virtual)
    a, b = value_at(lo), value_at(min(lo + 1, n - 1))
    t = virtual - lo
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def median(value_at: Callable[[int], float], n: int) -> float:
    """The median of ``n`` values as ``np.median`` computes it (the mean of the middle two for even n)."""
    return value_at(n // 2) if n % 2 else (value_at(n // 2 - 1) + value_at(n // 2)) / 2


def _wanted_ranks(n: int) -> set[int]:
    ranks = {0, n - 1, (n - 1) // 2, n // 2}
    for q in (90, 95, 99):
        lo = math.floor(float(np.true_divide(q, 100)) * (n - 1))
        ranks.update({lo, min(lo + 1, n - 1)})
    return ranks


def exact_stats(blocks: Blocks, overflow: npt.NDArray[np.int64], scale: float) -> dict[str, float | None]:
    """mean, median, std (population), p90, p95, p99, min, max of the values, divided by ``scale``.

    Args:
        blocks: Returns a fresh iterator over the uint32 blocks each time it is called (called twice).
            A value of :data:`PLACEHOLDER` stands for one of the ``overflow`` values.
        overflow: The exact values behind the placeholders (each ≥ :data:`PLACEHOLDER`).
        scale: Divisor applied to every statistic (1e6 turns ns into ms).

    Returns:
        The statistics keyed like :data:`.definitions.STAT_KEYS`; every one None when there are no values.
    """
    extra = np.sort(overflow)
    source = blocks if extra.size == 0 else (lambda: (b[b != PLACEHOLDER] for b in blocks()))
    n_small = 0
    total = int(extra.sum())
    high = np.zeros(_BUCKETS, dtype=np.int64)
    for block in source():
        n_small += int(block.size)
        total += int(block.sum(dtype=np.int64))
        high += np.bincount(block >> 16, minlength=_BUCKETS)
    n = n_small + int(extra.size)
    if n == 0:
        return dict.fromkeys(_STAT_KEYS)
    mean = total / n
    high_cum = np.cumsum(high)
    bucket_of = {r: int(np.searchsorted(high_cum, r, side="right")) for r in _wanted_ranks(n) if r < n_small}
    low = {b: np.zeros(_BUCKETS, dtype=np.int64) for b in set(bucket_of.values())}
    squares = float(np.square(extra.astype(np.float64) - mean).sum())
    for block in source():
        squares += float(np.square(block.astype(np.float64) - mean).sum())
        block_high = block >> 16
        for b, counts in low.items():
            counts += np.bincount(block[block_high == b] & _LOW_MASK, minlength=_BUCKETS)
    small = {}
    for rank, b in bucket_of.items():
        before = int(high_cum[b - 1]) if b else 0
        small[rank] = (b << 16) | int(np.searchsorted(np.cumsum(low[b]), rank - before, side="right"))

    def value_at(rank: int) -> float:
        return float(small[rank] if rank < n_small else extra[rank - n_small])

    return {
        "mean": mean / scale,
        "median": median(value_at, n) / scale,
        "std": math.sqrt(squares / n) / scale,
        "p90": percentile(value_at, n, 90) / scale,
        "p95": percentile(value_at, n, 95) / scale,
        "p99": percentile(value_at, n, 99) / scale,
        "min": value_at(0) / scale,
        "max": value_at(n - 1) / scale,
    }
