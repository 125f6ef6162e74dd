"""Numerical edges of the back-end not covered by test_numerical_extremes_scoring.py and
test_metrics.py: calibration of scores that carry no information, metrics of a single trial per
class, adaptive S-norm with a top-n of the whole cohort.  All guards (they pass on the code they
were written against): each states the mathematically expected value."""

import numpy as np
import pytest

from emkit.calibration import LinearCalibration
from emkit.metrics import act_dcf, cllr, eer, min_cllr, min_dcf, rocch
from emkit.score_norm import adaptive_snorm, snorm


@pytest.mark.parametrize("prior", [0.5, 0.1])
def test_calibration_of_all_equal_scores_maps_every_score_to_llr_zero(prior):
    """Equal scores carry no evidence: the prior-weighted objective is minimised by LLR = 0
    whatever the class proportions (3 targets, 7 non-targets here), a slope of exactly 0."""
    y = np.r_[np.ones(3, bool), np.zeros(7, bool)]
    calibration = LinearCalibration(prior=prior).fit(np.full(10, 2.5), y)
    assert calibration.coef_[0] == 0.0
    np.testing.assert_allclose(calibration.transform(np.array([2.5, -100.0])), 0.0, atol=1e-12)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_calibration_refuses_infinite_scores_naming_them(bad):
    with pytest.raises(ValueError, match="scores contains infinity"):
        LinearCalibration().fit(np.r_[bad, np.arange(9.0)], np.arange(10) % 2 == 0)


def test_calibration_of_one_class_names_the_counts():
    with pytest.raises(ValueError, match=r"^y must contain both target and non-target trials; got "
                                         r"2 target\(s\) and 0 non-target\(s\)"):
        LinearCalibration().fit([1.0, 2.0], [True, True])


def test_metrics_of_one_tied_trial_per_class():
    """One target and one non-target with the same score: the system cannot tell them apart."""
    assert eer([0.0], [0.0]) == 0.5
    assert min_dcf([1.0], [1.0], 0.01) == 1.0 and act_dcf([1.0], [1.0], 0.01) == 1.0
    assert cllr([0.0], [0.0]) == 1.0 and min_cllr([0.0], [0.0]) == 1.0
    hull = rocch([0.0], [0.0])
    np.testing.assert_array_equal(hull.p_miss, [0.0, 1.0])
    np.testing.assert_array_equal(hull.p_fa, [1.0, 0.0])


@pytest.mark.parametrize("empty", ["target_scores", "nontarget_scores"])
def test_metrics_of_a_single_class_name_the_empty_one(empty):
    tar, non = ([], [1.0]) if empty == "target_scores" else ([1.0], [])
    for metric in (eer, min_cllr, cllr):
        with pytest.raises(ValueError, match=rf"^{empty} must contain at least one score"):
            metric(tar, non)


@pytest.mark.parametrize("top_n", [5, 50])
def test_adaptive_snorm_with_the_whole_cohort_is_snorm(top_n):
    """top_n at or above the cohort size (5 and 4 scores) keeps every cohort score."""
    rng = np.random.default_rng(0)
    s, m, p = rng.normal(size=(2, 3)), rng.normal(size=(2, 5)), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(adaptive_snorm(s, m, p, top_n=top_n), snorm(s, m, p))
