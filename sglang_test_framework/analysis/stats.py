"""Small statistics without scipy: Student-t quantiles and mean ± 95% confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = ["mean_ci95", "t_quantile", "t_quantile_975"]

# Above this many degrees of freedom the Cornish-Fisher expansion is accurate to < 1e-7.
_SERIES_MAX_DOF = 1000


def _t_two_sided(t: float, dof: int) -> float:
    """P(|T| ≤ t) for Student's t with integer ``dof`` (Abramowitz & Stegun 26.7.3 / 26.7.4)."""
    theta = math.atan(t / math.sqrt(dof))
    sin_t, cos_t = math.sin(theta), math.cos(theta)
    c2 = cos_t * cos_t
    term = acc = 1.0
    if dof % 2 == 1:
        if dof == 1:
            return 2.0 * theta / math.pi
        for k in range(3, dof - 1, 2):  # 1 + (2/3)c² + (2·4)/(3·5)c⁴ + … up to cos^(dof−3)
            term *= (k - 1) / k * c2
            acc += term
        return 2.0 / math.pi * (theta + sin_t * cos_t * acc)
    for k in range(2, dof - 1, 2):  # 1 + (1/2)c² + (1·3)/(2·4)c⁴ + … up to cos^(dof−2)
        term *= (k - 1) / k * c2
        acc += term
    return sin_t * acc


def _cornish_fisher(q: float, dof: int) -> float:
    z = NormalDist().inv_cdf(q)
    z3, z5 = z**3, z**5
    return z + (z3 + z) / (4 * dof) + (5 * z5 + 16 * z3 + 3 * z) / (96 * dof**2)


def t_quantile(q: float, dof: int) -> float:
    """The ``q``-quantile of Student's t distribution with ``dof`` degrees of freedom.

    Exact series CDF inverted by bisection for ``dof`` ≤ 1000, Cornish-Fisher expansion above.

    Raises:
        ValueError: ``q`` not in (0, 1) or ``dof`` < 1.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q: must be in (0, 1), got {q}")
    if dof < 1:
        raise ValueError(f"dof: must be ≥ 1, got {dof}")
    if q < 0.5:
        return -t_quantile(1.0 - q, dof)
    if q == 0.5:
        return 0.0
    if dof > _SERIES_MAX_DOF:
        return _cornish_fisher(q, dof)
    target = 2.0 * q - 1.0
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, dof) < target:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_two_sided(mid, dof) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% critical value of Student's t (the 0.975 quantile); NaN for ``dof`` < 1."""
    return t_quantile(0.975, dof) if dof >= 1 else math.nan


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean of the finite ``values`` and the half-width of its 95% confidence interval,
    ``t₀.₉₇₅(n−1) · s / √n`` (sample std ``s``); the half-width is NaN for fewer than 2 values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    if n == 0:
        return math.nan, math.nan
    mean = sum(finite) / n
    if n < 2:
        return mean, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return mean, t_quantile_975(n - 1) * std / math.sqrt(n)
