"""Small statistics without scipy: Student-t quantiles and tail probabilities, mean ± 95% confidence
intervals, and Welch's two-sample t-test (the significance of A-vs-B differences over repeated runs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "SIGNIFICANCE_LEVEL",
    "WelchTest",
    "finite_values",
    "mean_ci95",
    "regularized_beta",
    "t_quantile",
    "t_quantile_975",
    "t_two_sided_p",
    "welch_t_test",
]

SIGNIFICANCE_LEVEL = 0.05
"""A difference is *significant* when its two-sided p-value is below this (95% confidence)."""
_BETA_EPS = 1e-15
_BETA_MAX_ITER = 500

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


def finite_values(values: Sequence[float | None]) -> list[float]:
    """The finite numbers of ``values`` as floats (None, NaN and ±inf left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def mean_ci95(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean of the finite ``values`` and the half-width of its 95% confidence interval,
    ``t₀.₉₇₅(n−1) · s / √n`` (sample std ``s``); the half-width is NaN for fewer than 2 values."""
    finite = finite_values(values)
    n = len(finite)
    if n == 0:
        return math.nan, math.nan
    mean = sum(finite) / n
    if n < 2:
        return mean, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return mean, t_quantile_975(n - 1) * std / math.sqrt(n)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes §6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, _BETA_MAX_ITER + 1):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < _BETA_EPS:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1.

    Raises:
        ValueError: ``a`` or ``b`` not > 0, or ``x`` outside [0, 1].
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"a, b: must be > 0, got {a}, {b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x: must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast here; else use the symmetry relation
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, dof: float) -> float:
    """P(|T| ≥ |t|) for Student's t with ``dof`` > 0 degrees of freedom (not necessarily an integer):
    ``I_{dof/(dof+t²)}(dof/2, 1/2)``.

    Raises:
        ValueError: ``dof`` not > 0 or ``t`` NaN.
    """
    if not dof > 0:
        raise ValueError(f"dof: must be > 0, got {dof}")
    if math.isnan(t):
        raise ValueError("t: must be a number, got NaN")
    if math.isinf(t):
        return 0.0
    return min(1.0, regularized_beta(dof / 2.0, 0.5, dof / (dof + t * t)))


@dataclass(frozen=True)
class WelchTest:
    """Welch's two-sample t-test of ``mean(a) − mean(b)`` (unequal variances).

    Attributes:
        difference: ``mean(a) − mean(b)``.
        t: The statistic ``difference / √(s²_a/n_a + s²_b/n_b)`` (±inf when both samples have zero
            variance and different means, NaN when the means are equal too).
        dof: Welch–Satterthwaite degrees of freedom (NaN when both variances are zero).
        p_value: Two-sided p-value: 1.0 for identical constant samples, 0.0 for different constant
            samples (no variation at all, so any difference is systematic).
    """

    difference: float
    t: float
    dof: float
    p_value: float

    @property
    def significant(self) -> bool:
        """True when ``p_value`` < :data:`SIGNIFICANCE_LEVEL` (significant at 95%)."""
        return self.p_value < SIGNIFICANCE_LEVEL


def welch_t_test(a: Sequence[float | None], b: Sequence[float | None]) -> WelchTest | None:
    """Welch's t-test of the finite values of ``a`` against those of ``b``; None when either has fewer
    than 2 values (no variance estimate, so no test)."""
    xa, xb = finite_values(a), finite_values(b)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return None
    mean_a, mean_b = sum(xa) / na, sum(xb) / nb
    va = sum((v - mean_a) ** 2 for v in xa) / (na - 1) / na
    vb = sum((v - mean_b) ** 2 for v in xb) / (nb - 1) / nb
    diff = mean_a - mean_b
    se2 = va + vb
    if se2 <= 0:
        if diff == 0:
            return WelchTest(0.0, math.nan, math.nan, 1.0)
        return WelchTest(diff, math.copysign(math.inf, diff), math.nan, 0.0)
    dof = se2**2 / ((va**2 / (na - 1) if va else 0.0) + (vb**2 / (nb - 1) if vb else 0.0))
    t = diff / math.sqrt(se2)
    return WelchTest(diff, t, dof, t_two_sided_p(t, dof))
