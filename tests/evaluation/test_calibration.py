"""Linear calibration, Cllr and min Cllr: hand-computed cases, synthetic Gaussian scores, bad input."""

import re

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.base import clone

from emkit.calibration import LinearCalibration, cllr, min_cllr, trial_labels
from emkit.metrics import act_dcf

LOG2 = np.log(2.0)


def naive_cllr(neg, pos):
    t = sum(np.log2(1 + np.exp(-x)) for x in pos) / len(pos)
    n = sum(np.log2(1 + np.exp(x)) for x in neg) / len(neg)
    return 0.5 * (t + n)


def test_cllr_hand_cases():
    assert cllr([0.0], [0.0]) == pytest.approx(1.0, rel=1e-15)  # an uninformative system
    assert cllr([np.log(3)], [-np.log(3)]) == pytest.approx(np.log2(4 / 3), rel=1e-14)
    # a target at llr -log 3 costs log2(4) = 2 bits, a non-target at 0 costs 1 bit
    assert cllr([-np.log(3)], [0.0]) == pytest.approx(1.5, rel=1e-14)
    assert cllr([900.0], [-800.0, -1e4]) == 0.0  # certain and right: no overflow
    assert cllr([0.0], [1e4]) == pytest.approx(0.5 * (1 + 1e4 / LOG2), rel=1e-12)
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(-1, 2, 50), rng.normal(1, 2, 30)
    assert cllr(pos, neg) == pytest.approx(naive_cllr(neg, pos), rel=1e-12)


def test_min_cllr_hand_cases():
    # sorted: 0(n) 1(t) 2(n) 3(t) -> PAV posteriors 0, 1/2, 1/2, 1 -> llrs -inf, 0, 0, +inf
    assert min_cllr([1.0, 3.0], [2.0, 0.0]) == pytest.approx(0.5, rel=1e-14)
    assert min_cllr([5.0, 6.0], [0.0, 1.0, 2.0]) == 0.0  # separable
    assert min_cllr([1.0, 1.0], [1.0, 1.0, 1.0]) == pytest.approx(1.0, rel=1e-14)  # all tied
    # reversed scores: PAV pools everything, min Cllr = 1 (no monotone information)
    assert min_cllr([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0, rel=1e-14)


def _gaussian_scores(rng, n, mu_t=3.0, mu_n=-1.0, sigma=2.0):
    return rng.normal(mu_n, sigma, n), rng.normal(mu_t, sigma, n)


@pytest.mark.parametrize("prior", [0.5, 0.1, 0.9])
def test_calibrated_gaussian_scores_reach_min_cllr(prior):
    rng = np.random.default_rng(1)
    dev_n, dev_t = _gaussian_scores(rng, 2000)
    cal = LinearCalibration(prior=prior).fit(np.r_[dev_t, dev_n], np.r_[np.ones(2000), np.zeros(2000)])
    # the true LLR of N(3, 2^2) vs N(-1, 2^2) is s - 1
    assert cal.coef_[0] == pytest.approx(1.0, abs=0.08)
    assert cal.intercept_ == pytest.approx(-1.0, abs=0.12)
    ev_n, ev_t = _gaussian_scores(rng, 20000)
    actual = cllr(cal.transform(ev_t), cal.transform(ev_n))
    minimum = min_cllr(ev_t, ev_n)
    # margin: calibrated Cllr within 0.02 bits of min Cllr (observed 0.002-0.003)
    assert minimum <= actual <= minimum + 0.02
    assert cllr(ev_t, ev_n) > actual + 0.05  # the raw scores (offset +1) were miscalibrated


def test_uncalibrated_scale_and_shift_are_undone():
    rng = np.random.default_rng(2)
    n, t = _gaussian_scores(rng, 3000)
    raw_n, raw_t = 40 * n + 300, 40 * t + 300  # same discrimination, far from LLRs
    cal = LinearCalibration().fit(np.r_[raw_t, raw_n], np.r_[np.ones(3000, bool), np.zeros(3000, bool)])
    np.testing.assert_allclose(cal.transform(raw_t), LinearCalibration().fit(
        np.r_[t, n], np.r_[np.ones(3000), np.zeros(3000)]).transform(t), atol=1e-4)
    assert min_cllr(raw_t, raw_n) == pytest.approx(min_cllr(t, n), rel=1e-12)  # invariant to monotone maps


def test_fusion_of_two_systems_and_matrix_transform():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(2000, bool), np.zeros(2000, bool)]
    truth = np.where(y, 1.0, -1.0)
    a = truth + rng.normal(size=4000)
    b = 2 * truth + rng.normal(size=4000) * 3
    fused = LinearCalibration().fit(np.column_stack([a, b]), y)
    single = LinearCalibration().fit(a, y)
    assert fused.coef_.shape == (2,) and fused.coef_[0] > fused.coef_[1] > 0
    llr_f = fused.transform(np.column_stack([a, b]))
    llr_s = single.transform(a)
    assert cllr(llr_f[y], llr_f[~y]) < cllr(llr_s[y], llr_s[~y])
    matrix = a[:12].reshape(3, 4)
    np.testing.assert_allclose(single.transform(matrix), single.transform(a[:12]).reshape(3, 4))


def test_trial_labels_and_fit_on_a_score_matrix():
    labels = trial_labels(["a", "b", "c"], ["b", "a", "a", "d"])
    np.testing.assert_array_equal(labels, [[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    rng = np.random.default_rng(4)
    models, probes = np.repeat(np.arange(20), 1), np.repeat(np.arange(20), 5)
    lab = trial_labels(models, probes)
    scores = np.where(lab, 2.0, -2.0) + rng.normal(size=lab.shape)
    cal = LinearCalibration().fit(scores.ravel(), lab.ravel())
    assert cal.transform(scores).shape == (20, 100)
    assert clone(cal).get_params() == {"prior": 0.5, "C": 1e6, "max_iter": 1000}


def test_bad_input():
    assert LinearCalibration().__sklearn_tags__().target_tags.required  # fit needs y
    with pytest.raises(ValueError, match="nontarget_scores"):
        cllr([1.0], [])
    with pytest.raises(ValueError, match="target_scores"):
        min_cllr([1.0, np.nan], [0.0])
    s = np.arange(6.0)
    with pytest.raises(ValueError, match="both target and non-target trials; got 6 target"):
        LinearCalibration().fit(s, np.ones(6))
    with pytest.raises(ValueError, match="y must hold booleans or 0/1"):
        LinearCalibration().fit(s, np.arange(6))
    with pytest.raises(ValueError, match=re.escape("y must have shape (6,)")):
        LinearCalibration().fit(s, np.ones(5))
    with pytest.raises(ValueError, match=re.escape("prior must be a float in (0, 1); got 1.5")):
        LinearCalibration(prior=1.5).fit(s, s > 2)
    with pytest.raises(ValueError, match="NaN"):
        LinearCalibration().fit(np.r_[s[:5], np.nan], s > 2)
    with pytest.warns(UserWarning, match="perfectly separated"):
        cal = LinearCalibration().fit(np.column_stack([s, s ** 2]), s > 2)
    with pytest.raises(ValueError, match=re.escape("scores must have 2 column(s)")):
        cal.transform(np.zeros((3, 3)))
    with pytest.raises(AttributeError, match="not fitted"):
        LinearCalibration().transform(s)
    with pytest.raises(NotFittedError, match="not fitted"):  # scikit-learn's convention
        LinearCalibration().transform(s)
    one = LinearCalibration().fit(s, np.arange(6) % 2 == 0)  # (not separable)
    with pytest.raises(ValueError, match="^scores contains infinity$"):  # was passed through
        one.transform(np.r_[s, np.inf])
    with pytest.raises(ValueError, match="calibrated scores overflow float64"):
        LinearCalibration._from_fitted([1e308], 0.0).transform(np.r_[s, 1.7e308])
    with pytest.raises(ValueError, match=r"^C must be a finite number > 0; got 0$"):
        LinearCalibration(C=0).fit(s, s > 2)
    with pytest.raises(ValueError, match=r"^max_iter must be an integer >= 1; got 0$"):  # was untrained
        LinearCalibration(max_iter=0).fit(s, s > 2)
    with pytest.raises(TypeError, match=r"^max_iter must be an integer >= 1; got NoneType"):
        LinearCalibration(max_iter=None).fit(s, s > 2)
    with pytest.raises(TypeError, match=r"^y must hold booleans or 0/1 \(1 = target trial\); "
                                        r"got dtype <U"):
        LinearCalibration().fit(s, ["target", "nontarget"] * 3)


def _objective(X, y, prior, C=1e6):
    """BOSARIS's prior-weighted cross-entropy of ``llr = X w + b`` plus the stated penalty
    ``|w * std(X)|^2 / (2 C n)``, and its gradient, written out."""
    n, lo, sd = y.size, np.log(prior / (1 - prior)), X.std(axis=0)
    tar, non = X[y], X[~y]

    def f(p):
        w, b = p[:-1], p[-1]
        return (prior * np.mean(np.logaddexp(0, -(tar @ w + b + lo)))
                + (1 - prior) * np.mean(np.logaddexp(0, non @ w + b + lo))
                + np.sum((w * sd) ** 2) / (2 * C * n))

    def grad(p):
        w, b = p[:-1], p[-1]
        gt = -prior / (1 + np.exp(tar @ w + b + lo)) / len(tar)
        gn = (1 - prior) / (1 + np.exp(-(non @ w + b + lo))) / len(non)
        return np.r_[tar.T @ gt + non.T @ gn + w * sd ** 2 / (C * n), gt.sum() + gn.sum()]

    return f, grad


@pytest.mark.parametrize("prior,n_systems", [(0.5, 1), (0.1, 3), (0.01, 1)])
def test_fit_reaches_the_optimum_of_its_objective(prior, n_systems):
    # before: scikit-learn's default tol stopped L-BFGS with a gradient of 5e-4, 0.1-2.4 % off
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    y = np.r_[np.ones(300, bool), np.zeros(2000, bool)]
    X = np.r_[rng.normal(2, 1.5, (300, n_systems)), rng.normal(-1, 1.0, (2000, n_systems))] * 7 + 3
    cal = LinearCalibration(prior=prior).fit(X if n_systems > 1 else X[:, 0], y)
    f, grad = _objective(X, y, prior)
    got = np.r_[cal.coef_, cal.intercept_]
    assert np.abs(grad(got)).max() < 1e-12
    best = minimize(f, np.zeros(n_systems + 1), jac=grad, method="BFGS",
                    options=dict(gtol=1e-13, maxiter=10000)).x
    np.testing.assert_allclose(got, best, rtol=1e-8)
    if prior == 0.01:  # the audit's figures (the unregularised optimum: 0.6595 and 0.40886)
        llr = cal.transform(X[:, 0])
        assert act_dcf(llr[y], llr[~y], 0.01) == pytest.approx(0.6595, abs=5e-5)
        assert cllr(llr[y], llr[~y]) == pytest.approx(0.408863, abs=1e-6)


def test_separated_scores_give_the_stated_regularised_optimum_and_a_warning():
    # the objective alone has no minimum here; before, the slope was where L-BFGS stopped
    X = np.r_[np.linspace(1, 2, 50), np.linspace(-2, -1, 50)]
    y = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    with pytest.warns(UserWarning, match=r"perfectly separated.*regularisation C=1e\+06"):
        cal = LinearCalibration().fit(X, y)
    _, grad = _objective(X[:, None], y, 0.5)
    assert np.abs(grad(np.r_[cal.coef_, cal.intercept_])).max() < 1e-13
    assert cal.coef_[0] == pytest.approx(12.667070, rel=1e-6) and abs(cal.intercept_) < 1e-12
    with pytest.warns(UserWarning, match="perfectly separated") as caught:
        big = LinearCalibration().fit(X * 1e6 + 3e6, y)
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="perfectly separated") as caught:
        LinearCalibration().fit_transform(X, y)
    assert caught[0].filename == __file__  # (was emkit's fit_transform)
    np.testing.assert_allclose(big.transform(X * 1e6 + 3e6), cal.transform(X), atol=1e-8)


def test_a_calibration_cut_short_warns_at_the_callers_line():
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    y = np.arange(200) % 2 == 0
    X = rng.normal(size=200) + 2.0 * y
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1 Newton") as caught:
        LinearCalibration(max_iter=1).fit_transform(X, y)
    assert caught[0].filename == __file__  # (was emkit's fit_transform)
