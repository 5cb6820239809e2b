"""Student-t quantiles without scipy, and mean ± 95% CI."""

from __future__ import annotations

import math

import pytest

from sglang_test_framework.analysis.stats import mean_ci95, t_quantile, t_quantile_975

# Two-sided 95% critical values from standard tables.
TABLE = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 10: 2.2281, 30: 2.0423, 120: 1.9799}


@pytest.mark.parametrize(("dof", "expected"), sorted(TABLE.items()))
def test_matches_the_t_table(dof: int, expected: float) -> None:
    assert t_quantile_975(dof) == pytest.approx(expected, abs=1e-4)


def test_other_quantiles_symmetry_and_large_dof() -> None:
    assert t_quantile(0.995, 5) == pytest.approx(4.0321, abs=1e-4)
    assert t_quantile(0.025, 5) == pytest.approx(-t_quantile(0.975, 5))
    assert t_quantile(0.5, 7) == 0.0
    assert t_quantile_975(10**6) == pytest.approx(1.95996, abs=1e-5)
    assert t_quantile_975(1000) == pytest.approx(1.96234, abs=1e-5)
    assert t_quantile_975(1001) == pytest.approx(1.96234, abs=1e-5)  # series ↔ expansion handover
    assert math.isnan(t_quantile_975(0))
    with pytest.raises(ValueError, match="q"):
        t_quantile(1.0, 3)


def test_mean_ci95() -> None:
    mean, half = mean_ci95([20.0, 22.0])
    assert mean == 21.0 and half == pytest.approx(12.7062, rel=1e-4)
    mean, half = mean_ci95([5.0, float("nan")])
    assert mean == 5.0 and math.isnan(half)
    assert all(math.isnan(x) for x in mean_ci95([]))
