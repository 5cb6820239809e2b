"""Reading one record's raw values robustly: every metric input is checked here, once.

A record reaches the collector from the sender, a test, or a JSONL file written by an older version, so
any field may hold a value of the wrong type. A wrong value is *missing*, never an exception: a
timestamp becomes ``0`` ("not recorded", as in :class:`RequestRecord`), a count ``-1``, an optional
value ``None``. The token chunks of a record become its token-time gaps here (the ITL rule of
:func:`token_gaps_ns`), the one per-token quantity the run summary keeps.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "MAX_TOKENS_PER_REQUEST",
    "MISSING_COUNT",
    "as_count",
    "as_float",
    "as_int",
    "as_ns",
    "as_text",
    "token_data",
    "token_gaps_ns",
]

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
MISSING_COUNT = -1
# More tokens than this in one response is corrupt data; expanding it would exhaust memory.
MAX_TOKENS_PER_REQUEST = 1 << 24


def as_int(value: object) -> int | None:
    """``value`` as a Python int if it is an integer (``int`` or a numpy integer, never a bool), else None."""
    if type(value) is int:
        return value
    if isinstance(value, np.integer):
        return int(value)
    return None


def as_ns(value: object) -> int:
    """A timestamp (ns): a positive integer that fits int64; anything else is 0 (not recorded)."""
    v = as_int(value)
    return v if v is not None and 0 < v <= INT64_MAX else 0


def as_count(value: object) -> int:
    """A token count: an integer in [0, 2³¹); anything else is :data:`MISSING_COUNT` (-1)."""
    v = as_int(value)
    return v if v is not None and 0 <= v <= INT32_MAX else MISSING_COUNT


def as_float(value: object) -> float | None:
    """A finite number (int or float, not bool) as float; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def as_text(value: object) -> str | None:
    """A non-empty string as it is, None or ``""`` as None, any other value as ``str(value)``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    return str(value)


def token_gaps_ns(first_token_ns: int, chunk_ns: object, chunk_tokens: object) -> tuple[int, list[int]]:
    """The token data of one record: ``(tokens of the first chunk, gaps)`` (:func:`token_data`)."""
    first_tokens, gaps, _ = token_data(first_token_ns, chunk_ns, chunk_tokens)
    return first_tokens, gaps


def token_data(first_token_ns: int, chunk_ns: object, chunk_tokens: object) -> tuple[int, list[int], int]:
    """The token data of one record: ``(tokens of the first chunk, gaps, chunks carrying tokens)``.

    Token times (the ITL rule, bench_serving's for SGLang streams): the first chunk carrying tokens puts
    its k₀ tokens at its time; each later chunk i carrying kᵢ tokens spreads them evenly over the gap
    gᵢ = tᵢ − tᵢ₋₁ since the previous token-carrying chunk, token s (1…kᵢ) at
    ``tᵢ₋₁ + (gᵢ·s) // kᵢ``, so the last one lands on tᵢ. Chunks without tokens are skipped. The gaps
    are the differences between consecutive token times after the first chunk, in ns: within 1 ns of
    gᵢ / kᵢ each, summing to gᵢ exactly.

    ``first_token_ns`` is the record's checked ``first_token_ns``. Malformed chunks give ``(0, [], 0)``
    (no token data): lists that are not lists or tuples, a time that is not a positive int, a token count
    that is not a non-negative int, times that go back, a first token-carrying chunk whose time is not
    ``first_token_ns`` (records.py: ``chunk_ns[0] == first_token_ns``), or more than
    :data:`MAX_TOKENS_PER_REQUEST` tokens.
    """
    if not isinstance(chunk_ns, (list, tuple)) or not isinstance(chunk_tokens, (list, tuple)):
        return 0, [], 0
    first_tokens = 0
    prev_ns = 0
    total = 0
    chunks = 0
    gaps: list[int] = []
    for raw_ns, raw_tokens in zip(chunk_ns, chunk_tokens, strict=False):  # unpaired entries carry nothing
        k = as_count(raw_tokens)
        if k == 0:
            continue
        t = as_ns(raw_ns)
        total += k
        chunks += 1
        if k < 0 or t == 0 or t < prev_ns or total > MAX_TOKENS_PER_REQUEST:
            return 0, [], 0
        if prev_ns == 0:
            if t != first_token_ns:
                return 0, [], 0
            first_tokens = k
        elif k == 1:
            gaps.append(t - prev_ns)
        else:
            gap = t - prev_ns
            gaps.extend((gap * s) // k - (gap * (s - 1)) // k for s in range(1, k + 1))
        prev_ns = t
    return first_tokens, gaps, chunks
