"""Welch's t-test and Student-t tail probabilities without scipy."""

from __future__ import annotations

import math

import pytest

from sglang_test_framework.analysis.stats import (
    _t_two_sided,
    regularized_beta,
    t_quantile,
    t_two_sided_p,
    welch_t_test,
)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 30, 200])
def test_tail_probability_matches_the_exact_series_for_integer_dof(dof: int) -> None:
    for t in (0.3, 1.0, 2.5, 6.0):
        assert t_two_sided_p(t, dof) == pytest.approx(1.0 - _t_two_sided(t, dof), abs=1e-10)


@pytest.mark.parametrize("dof", [1, 4, 9.5, 31.7])
def test_tail_probability_inverts_the_quantile(dof: float) -> None:
    # at the two-sided 95% critical value the tail probability is 5% (fractional dof: between its neighbours)
    if float(dof).is_integer():
        assert t_two_sided_p(t_quantile(0.975, int(dof)), dof) == pytest.approx(0.05, abs=1e-9)
    else:
        # fewer dof, heavier tails: the critical value of floor(dof) lies further out than the one of ceil(dof)
        fewer, more = t_quantile(0.975, math.floor(dof)), t_quantile(0.975, math.ceil(dof))
        assert t_two_sided_p(fewer, dof) < 0.05 < t_two_sided_p(more, dof)


def test_tail_probability_edges() -> None:
    assert t_two_sided_p(0.0, 3.0) == 1.0 and t_two_sided_p(math.inf, 3.0) == 0.0
    assert t_two_sided_p(-2.0, 5.0) == t_two_sided_p(2.0, 5.0)
    assert regularized_beta(2.0, 3.0, 0.0) == 0.0 and regularized_beta(2.0, 3.0, 1.0) == 1.0
    assert regularized_beta(1.0, 1.0, 0.37) == pytest.approx(0.37)  # I_x(1, 1) = x
    with pytest.raises(ValueError, match="dof"):
        t_two_sided_p(1.0, 0.0)
    with pytest.raises(ValueError, match="x"):
        regularized_beta(1.0, 1.0, 1.5)


def test_a_clear_difference_is_significant_and_identical_groups_are_not() -> None:
    clear = welch_t_test([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
    assert clear is not None and clear.significant and clear.difference == 9.0
    assert clear.dof == pytest.approx(4.0) and clear.t == pytest.approx(9.0 / math.sqrt(2 / 3))
    same = welch_t_test([5.0, 6.0, 7.0], [5.0, 6.0, 7.0])
    assert same is not None and not same.significant and same.p_value == pytest.approx(1.0)
    overlapping = welch_t_test([10.0, 14.0, 9.0], [11.0, 8.0, 13.0])
    assert overlapping is not None and not overlapping.significant and overlapping.p_value > 0.5


def test_unequal_variances_and_sizes_use_the_welch_satterthwaite_dof() -> None:
    test = welch_t_test([1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 30.0])
    assert test is not None
    va, vb = 2.5 / 5, 200.0 / 2
    assert test.dof == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 1))
    assert 1.0 <= test.dof < 2.0 and not test.significant  # one wild run per side decides little


def test_no_test_below_two_runs_and_constant_samples() -> None:
    assert welch_t_test([1.0], [1.0, 2.0]) is None
    assert welch_t_test([1.0, None, math.nan], [1.0, 2.0]) is None  # missing values do not count as runs
    constant = welch_t_test([3.0, 3.0], [2.0, 2.0])
    assert constant is not None and constant.p_value == 0.0 and constant.significant
    equal = welch_t_test([3.0, 3.0], [3.0, 3.0])
    assert equal is not None and equal.p_value == 1.0 and not equal.significant
