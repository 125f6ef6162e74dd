"""Numerical extremes in training back-ends and scoring (issue 11 item 6): degenerate PLDA training,
a PLDA without between-class directions, score normalisation and calibration of scores near the
ends of the float64 range, and degenerate cohorts.  Each test asserts the exact behaviour: the
error type and a message naming the argument, or the correct numbers."""

import numpy as np
import pytest
from _parity import assert_parity

from emkit._kernels import plda as kp
from emkit.calibration import LinearCalibration
from emkit.metrics import cllr, eer, min_cllr, min_dcf
from emkit.plda import PLDA
from emkit.score_norm import adaptive_snorm, snorm, tnorm, znorm, ztnorm

MODELS = ("two-covariance", "simplified", "full")


def _labelled(per_class, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(per_class)), per_class)
    return rng.normal(size=(len(per_class), dim))[y] * 3 + rng.normal(size=(len(y), dim)), y


# --- PLDA ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_plda_one_sample_per_class_is_refused(model):
    X, y = _labelled([1] * 6, dim=3)
    with pytest.raises(ValueError, match=r"^y: every one of the 6 classes has a single sample, so the "
                                         r"within-class covariance cannot be estimated"):
        PLDA(model=model, dim_f=2, dim_g=2).fit(X, y)


@pytest.mark.parametrize("model", MODELS)
def test_plda_too_few_within_class_samples_is_refused(model):
    X, y = _labelled([1] * 9 + [2])  # 11 samples, 10 classes, 5 features: within-class rank 1
    with pytest.raises(ValueError, match=r"^y: n_samples - n_classes = 11 - 10 = 1 is less than "
                                         r"n_features \(5\)"):
        PLDA(model=model, dim_f=3, dim_g=2).fit(X, y)


@pytest.mark.parametrize("model", MODELS)
def test_plda_with_just_enough_within_class_samples_trains(model):
    X, y = _labelled([1] * 5 + [2] * 5)  # n_samples - n_classes = 5 = n_features
    plda = PLDA(model=model, dim_f=3, dim_g=2).fit(X, y)
    # the smallest within-class variance is estimated (about 0.015), far above the 1e-8 floor
    assert np.linalg.eigvalsh(plda.within_covariance_).min() > 1e-2
    assert np.isfinite(plda.log_likelihood_ratio(X[:3], X[3:6])).all()


@pytest.mark.parametrize("model_counts", [[2.0, 2.0, 2.0], [1.0, 2.0, 2.0]])
def test_llr_kernel_with_effective_rank_zero_is_zero(model_counts):
    out = np.full((3, 4), np.nan)  # before: UnboundLocalError when all models had one count
    got = kp.llr_matrix(np.empty((3, 0)), np.array(model_counts), np.empty((4, 0)),
                        np.array([1.0, 1.0, 3.0, 1.0]), np.empty(0), out, 2)
    assert got is out
    np.testing.assert_array_equal(out, np.zeros((3, 4)))


def test_plda_without_between_class_direction_scores_zero():
    X, y = _labelled([3] * 6)
    plda = PLDA(model="simplified", dim_f=2, max_iterations=3).fit(X, y)
    plda.F_ = np.zeros_like(plda.F_)  # no class information: both hypotheses are the same model
    models = plda.enroll(X[:9], y[:9])
    np.testing.assert_array_equal(plda.log_likelihood_ratio(models, X[9:]), np.zeros((3, 9)))


# --- score normalisation ------------------------------------------------------------------------


def _norm_inputs(seed=1):
    rng = np.random.default_rng(seed)
    return {"scores": rng.normal(size=(3, 4)) + 1.0, "model_cohort_scores": rng.normal(size=(3, 7)),
            "cohort_probe_scores": rng.normal(size=(6, 4)), "cohort_cohort_scores": rng.normal(size=(6, 7))}


NORMS = {
    "znorm": lambda c: znorm(c["scores"], c["model_cohort_scores"]),
    "tnorm": lambda c: tnorm(c["scores"], c["cohort_probe_scores"]),
    "snorm": lambda c: snorm(c["scores"], c["model_cohort_scores"], c["cohort_probe_scores"]),
    "adaptive_snorm": lambda c: adaptive_snorm(c["scores"], c["model_cohort_scores"],
                                               c["cohort_probe_scores"], top_n=4),
    "ztnorm": lambda c: ztnorm(**c),
}


@pytest.mark.parametrize("scale", [1e300, 1e-300, -1e305, 2.0 ** -1060])
@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalisation_is_scale_invariant_near_the_ends_of_the_range(name, scale):
    """Normalised scores do not depend on the unit of the raw scores; before: all zeros (with an
    overflow RuntimeWarning) near 1e300, a zero-standard-deviation error near 1e-300."""
    c = _norm_inputs()
    expected = NORMS[name](c)
    if scale < 0:  # a negative unit also flips the order: compare with the flipped scores
        expected = NORMS[name]({k: -v for k, v in c.items()})
    got = NORMS[name]({k: v * scale for k, v in c.items()})
    tol = 1e-3 if abs(scale) < 1e-300 else 1e-13  # subnormal inputs keep about 4 digits
    assert_parity(got, expected, tol=tol)


def test_constant_cohort_is_refused_even_when_rounding_leaves_a_tiny_std():
    # the mean of [0.1, 0.1, 0.1] is 0.1 + 1.4e-17: before, the z-normed score was 5.3e16
    with pytest.raises(ValueError, match=r"^model_cohort_scores row 1 has a zero standard deviation"):
        znorm([[1.0], [1.0]], [[0.0, 1.0, 2.0], [0.1, 0.1, 0.1]])
    with pytest.raises(ValueError, match=r"^cohort_probe_scores column 0 has a zero standard deviation"):
        tnorm([[1.0]], [[0.1], [0.1], [0.1]])


def test_cohort_of_one_score():
    with pytest.raises(ValueError, match=r"^model_cohort_scores row 0 has 1 usable cohort score\(s\); at "
                                         r"least 2 are needed \(ddof=1\)"):
        znorm([[1.0]], [[3.0]])
    with pytest.raises(ValueError, match=r"^model_cohort_scores row 0 has a zero standard deviation"):
        znorm([[1.0]], [[3.0]], ddof=0)  # one score: std 0 with ddof=0


def test_empty_cohort_and_fully_masked_cohort():
    with pytest.raises(ValueError, match=r"^cohort_probe_scores has an empty cohort \(shape \(0, 2\)\)"):
        tnorm(np.ones((1, 2)), np.empty((0, 2)))
    c = _norm_inputs()
    mask = np.zeros((6, 7), dtype=bool)
    mask[2, 1:] = True  # T-cohort model 2 keeps one Z-cohort score
    with pytest.raises(ValueError, match=r"^cohort_cohort_scores row 2 has 1 usable cohort score\(s\)"):
        ztnorm(**c, same_speaker_mask=mask)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_refused(bad):
    c = _norm_inputs()
    c["cohort_probe_scores"][4, 2] = bad
    with pytest.raises(ValueError, match=r"^cohort_probe_scores contains NaN or infinity \(first at "
                                         r"index \(4, 2\)\)"):
        NORMS["snorm"](c)
    c = _norm_inputs()
    c["scores"][0, 3] = bad
    with pytest.raises(ValueError, match=r"^scores contains NaN or infinity \(first at index \(0, 3\)\)"):
        NORMS["znorm"](c)


@pytest.mark.parametrize("name", sorted(NORMS))
def test_normalisation_of_scores_in_the_top_octave_of_float64(name):
    """Cohort scores of 2**1023 (8.99e307) and more: their scale 2**1024 overflowed and every
    score was said to have a zero standard deviation."""
    c = _norm_inputs()
    unit = 1.7e308 / max(np.abs(v).max() for v in c.values())
    assert_parity(NORMS[name]({k: v * unit for k, v in c.items()}), NORMS[name](c), tol=1e-13)


def test_normalised_score_that_overflows_is_refused():
    # 1e300 lies 1.4e600 standard deviations from a cohort [0, 1e-300]: not representable
    with pytest.raises(ValueError, match=r"^the normalised score at index \(0, 0\) overflows float64.*"
                                         r"\(model_cohort_scores\)"):
        znorm([[1e300]], [[0.0, 1e-300]])
    np.testing.assert_allclose(znorm([[1e-300]], [[0.0, 1e-300]]), [[2**-0.5]], rtol=1e-15)


def test_complex_scores_are_refused():
    with pytest.raises(TypeError, match=r"^scores must be a real numeric 2-D array; got complex values"):
        znorm(np.ones((2, 2)) + 1j, np.ones((2, 3)))


# --- calibration and metrics --------------------------------------------------------------------


@pytest.mark.parametrize("unit", [1e300, 1e-300])
def test_calibration_is_scale_invariant(unit):
    rng = np.random.default_rng(4)
    s = np.r_[rng.normal(size=30) + 2.0, rng.normal(size=30)]
    y = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    ref = LinearCalibration().fit(s, y)
    big = LinearCalibration().fit(s * unit, y)  # before: weight 0 and an overflow warning at 1e300
    assert big.coef_[0] * unit == pytest.approx(ref.coef_[0], rel=1e-6)
    assert big.intercept_ == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)
    assert_parity(big.transform(s * unit), ref.transform(s), tol=1e-6)


def test_calibration_of_scores_in_the_top_octave_of_float64():
    """(the same overflow: weight 0 and intercept 0, without a word)"""
    rng = np.random.default_rng(4)
    s = np.r_[rng.normal(size=30) + 2.0, rng.normal(size=30)]
    y = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    unit = 1.7e308 / np.abs(s).max()
    ref, big = LinearCalibration().fit(s, y), LinearCalibration().fit(s * unit, y)
    assert big.coef_[0] * unit == pytest.approx(ref.coef_[0], rel=1e-6)
    assert big.intercept_ == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)


def test_metrics_of_extreme_scores():
    assert eer([1e300, 2e300], [-1e300, 0.0]) == 0.0
    assert eer([-1e300, 0.0], [1e300, 2e300]) == 0.5  # ROCCH EER of a reversed system
    assert min_dcf([1e300, 2e300], [-1e300, 0.0], 0.01) == 0.0
    assert cllr([1e300], [-1e300]) == 0.0
    assert cllr([-1e300], [1e300]) == pytest.approx(1e300 / np.log(2), rel=1e-15)
    assert min_cllr([1e-300, 2e-300], [-1e-300, 0.0]) == 0.0
    with pytest.raises(ValueError, match=r"^nontarget_scores must contain only finite scores; got 1 "
                                         r"non-finite value\(s\), the first nan at index 1"):
        eer([1.0], [0.0, np.nan])
