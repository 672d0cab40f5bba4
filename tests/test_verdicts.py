"""The declared test behind every verdict: Welch's t on the per-seed difference with its 95 % interval,
a gate on the baseline having learned, and the rules that join and phrase the results."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ggcn.experiments import verdicts
from ggcn.experiments.verdicts import judge


@pytest.mark.parametrize(
    "ours, theirs, verdict",
    [
        ([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], verdicts.REPRODUCED),
        ([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], verdicts.NOT_REPRODUCED),
        ([1.0, 2.0, 0.5], [1.2, 0.4, 2.1], verdicts.INCONCLUSIVE),
        ([1.0, 1.1], [2.0, 2.1], verdicts.INCONCLUSIVE),  # two seeds a side are too few to decide
    ],
)
def test_better_means_the_95_percent_interval_of_the_difference_excludes_zero(ours, theirs, verdict):
    assert judge(ours, theirs) == verdict
    assert judge([-v for v in ours], [-v for v in theirs], higher_is_better=True) == verdict


def test_the_declared_test_is_welchs_t_with_its_interval():
    a, b = [0.9, 1.3, 1.0, 1.6, 1.1], [1.5, 1.9, 1.4, 2.6, 1.8, 2.2]
    test = verdicts.difference(a, b)
    welch = scipy_stats.ttest_ind(a, b, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    assert test.delta == pytest.approx(np.mean(a) - np.mean(b))
    assert (test.low, test.high, test.p) == pytest.approx((low, high, welch.pvalue))
    assert test.n == (5, 6) and test.result == verdicts.LOWER
    assert "95% interval" in test.text() and "5 vs 6 seeds" in test.text()


def test_constant_sides_that_differ_are_told_apart():
    test = verdicts.difference([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    assert (test.low, test.high, test.p, test.result) == (-1.0, -1.0, 0.0, verdicts.LOWER)


def test_diverging_far_more_often_is_worse_by_fishers_exact_test():
    inf = math.inf
    test = verdicts.difference([0.26, 0.27, 0.26, 0.25, 0.26], [inf] * 5)
    assert test.result == verdicts.LOWER and test.p_diverged == pytest.approx(
        scipy_stats.fisher_exact([[0, 5], [5, 0]]).pvalue)
    assert "diverged 0 vs 5" in test.text() and "Fisher" in test.text()
    assert verdicts.outcome([inf] * 5, [0.3] * 5) == verdicts.HIGHER
    assert verdicts.judge([0.3, 0.31, 0.29, 0.3], [inf, inf, inf, 0.1]) == verdicts.INCONCLUSIVE  # 3 of 4: p 0.14


def test_a_side_that_diverged_more_often_cannot_win():
    finite, worse = [0.30, 0.31, 0.29], [0.50, 0.51, 0.49]
    assert verdicts.outcome(finite, worse) == verdicts.LOWER
    assert verdicts.outcome(finite + [math.inf], worse) == verdicts.TIE
    assert verdicts.outcome(finite, worse + [math.inf]) == verdicts.LOWER
    assert "diverged 1 vs 0" in verdicts.difference(finite + [math.inf], worse).text()
    with pytest.raises(ValueError, match="non-NaN"):
        verdicts.outcome([float("nan")], [0.1])


def test_no_verdict_when_the_baseline_did_not_learn():
    assert judge([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], learned=False) == verdicts.NOT_LEARNED
    assert verdicts.combine([verdicts.REPRODUCED, verdicts.NOT_LEARNED]) == verdicts.NOT_LEARNED
    # a comparison whose baseline did learn still refutes the claim
    assert verdicts.combine([verdicts.NOT_REPRODUCED, verdicts.NOT_LEARNED]) == verdicts.NOT_REPRODUCED
    assert verdicts.most([True, True, False]) and not verdicts.most([True, False]) and not verdicts.most([])


def test_a_claim_of_several_parts_holds_only_if_every_part_does():
    R, N, I = verdicts.REPRODUCED, verdicts.NOT_REPRODUCED, verdicts.INCONCLUSIVE
    assert verdicts.combine([R, R]) == R and verdicts.combine([R, I]) == I and verdicts.combine([I, N]) == N \
        and verdicts.combine([R, N]) == N


def test_every_claim_declares_its_test_and_its_gate():
    for claim in verdicts.CLAIMS:
        assert "reproduced if" in claim.test and "Gate:" in claim.test, claim.id


def test_outcomes_read_as_phrases():
    assert verdicts.versus(verdicts.LOWER, "KL's") == "lower than KL's"
    assert verdicts.versus(verdicts.TIE, "KL's") == "not distinguishable from KL's by the test"
