"""Exact statistics of block-streamed uint32 values equal numpy's over the whole array."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from sglang_test_framework.metrics import definitions as d
from sglang_test_framework.metrics.order_stats import PLACEHOLDER, exact_stats


def numpy_stats(values: npt.NDArray[np.float64]) -> dict[str, float]:
    p90, p95, p99 = np.percentile(values, [90, 95, 99])
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "std": float(values.std()),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def cases() -> Iterator[tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]]:
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 10, 999, 5000):
        yield rng.integers(0, PLACEHOLDER, size, dtype=np.uint64).astype(np.uint32), np.zeros(0, np.int64)
        yield np.full(size, 15_000_000, dtype=np.uint32), np.zeros(0, np.int64)  # one bucket holds them all
        yield rng.integers(9_990_000, 10_010_000, size).astype(np.uint32), np.zeros(0, np.int64)
        overflow = rng.integers(PLACEHOLDER, 2**40, 3).astype(np.int64)
        values = np.concatenate([rng.integers(0, 70_000, size), np.full(3, PLACEHOLDER)]).astype(np.uint32)
        yield rng.permutation(values), overflow


@pytest.mark.parametrize(("values", "overflow"), list(cases()))
def test_exact_stats_equal_numpy(values: npt.NDArray[np.uint32], overflow: npt.NDArray[np.int64]) -> None:
    got = exact_stats(lambda: iter(np.array_split(values, 4)), overflow, 1e6)
    real = np.concatenate([values[values != PLACEHOLDER].astype(np.float64), overflow.astype(np.float64)])
    for key, want in numpy_stats(real / 1e6).items():
        assert got[key] == pytest.approx(want, rel=1e-12, abs=1e-12), key


def test_no_values_give_nones() -> None:
    assert exact_stats(lambda: iter([]), np.zeros(0, np.int64), 1.0) == dict.fromkeys(d.STAT_KEYS)


def test_stats_in_place_ignores_nan_and_sorts() -> None:
    values = np.array([4.0, np.nan, 1.0, 3.0, 2.0])
    assert d.stats_in_place(values) == d.stats([1.0, 2.0, 3.0, 4.0])
    assert values[:4].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert d.stats_in_place(np.array([np.nan])) == dict.fromkeys(d.STAT_KEYS)
