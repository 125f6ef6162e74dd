"""GMM training and inference on degenerate statistics, parameters and data: no silent NaN, and an
error naming the argument where there is no answer."""

import re
import warnings

import numpy as np
import pytest

from emkit import GMMMachine
from emkit._kernels.scoring_xp import map_adapt_means


def _ubm():
    ubm = GMMMachine(2)
    ubm.means = np.array([[0.0, 0.0, 0.0], [40.0, 40.0, 40.0]])
    ubm.variances = np.array([[1.0, 2.0, 0.5], [1.5, 1.0, 1.0]])
    ubm.weights = np.array([0.3, 0.7])
    return ubm


_ALL = dict(update_means=True, update_variances=True, update_weights=True)


# -- ML where a Gaussian has no frames ------------------------------------------------------------


def test_ml_gaussian_without_frames_keeps_the_reference_sum_over_eps():
    ubm, X = _ubm(), np.random.default_rng(0).normal(size=(30, 3))
    m = GMMMachine(2, max_fitting_steps=1, convergence_threshold=None, **_ALL)
    m.means, m.variances, m.weights = ubm.means, ubm.variances, ubm.weights
    m.fit(X)
    np.testing.assert_array_equal(m.means[1], [0.0, 0.0, 0.0])  # 0 / EPS, as the reference
    np.testing.assert_allclose(m.means[0], X.mean(0), rtol=0, atol=1e-14)


@pytest.mark.parametrize("update", [dict(update_means=True), dict(update_means=False, update_variances=True)])
def test_ml_threshold_zero_with_a_gaussian_without_frames_names_the_threshold(update):
    ubm, X = _ubm(), np.random.default_rng(0).normal(size=(30, 3))
    m = GMMMachine(2, max_fitting_steps=1, mean_var_update_threshold=0.0, **update)
    m.means, m.variances, m.weights = ubm.means, ubm.variances, ubm.weights
    before = m.means.copy()
    with pytest.raises(ValueError, match=r"mean_var_update_threshold=0\.0: a Gaussian received no"):
        m.fit(X)
    np.testing.assert_array_equal(m.means, before)  # nothing half-updated
    # the same threshold is fine while every Gaussian has frames
    m.means = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    assert np.isfinite(m.fit(X).means).all()


# -- MAP adaptation where the reference's formulas are 0/0 ----------------------------------------


def test_map_adaptation_to_statistics_of_no_frame_keeps_the_prior():
    ubm = _ubm()
    empty = ubm.acc_stats(np.zeros((0, 3)))
    m = GMMMachine(2, trainer="map", ubm=ubm, **_ALL).adapt(empty)
    np.testing.assert_allclose(m.weights, ubm.weights, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(m.means, ubm.means)
    np.testing.assert_array_equal(m.variances, ubm.variances)


def test_map_relevance_factor_zero_gives_a_gaussian_without_frames_weight_zero():
    ubm, X = _ubm(), np.random.default_rng(0).normal(size=(30, 3))
    assert ubm.acc_stats(X).n[1] == 0.0
    m = GMMMachine(2, trainer="map", ubm=ubm, map_relevance_factor=0, max_fitting_steps=1, **_ALL).fit(X)
    np.testing.assert_array_equal(m.weights, [1.0, 0.0])  # alpha = 1: the ML weights n_c / t
    np.testing.assert_allclose(m.means[0], X.mean(0), rtol=0, atol=1e-14)
    np.testing.assert_allclose(m.variances[0], X.var(0), rtol=1e-12)
    np.testing.assert_array_equal(m.means[1], ubm.means[1])
    np.testing.assert_array_equal(m.variances[1], ubm.variances[1])
    iterated = GMMMachine(2, trainer="map", ubm=ubm, map_relevance_factor=0, **_ALL).fit(X)
    assert np.isfinite(iterated.log_likelihood(X)).all()
    assert np.isfinite(iterated.weights).all()


@pytest.mark.parametrize("kw", [dict(map_relevance_factor=0), dict(map_relevance_factor=None, map_alpha=1.0)])
def test_map_weights_of_no_frame_with_alpha_one_are_refused(kw):
    ubm = _ubm()
    with pytest.raises(ValueError, match=r"map_relevance_factor=0 or map_alpha=1\): got t = 0"):
        GMMMachine(2, trainer="map", ubm=ubm, **_ALL, **kw).adapt(ubm.acc_stats(np.zeros((0, 3))))


def test_map_means_with_a_zero_threshold_keep_the_prior_for_an_empty_gaussian():
    ubm = _ubm()
    n = np.array([[3.0, 0.0]])
    px = np.array([[[3.0, 6.0, 9.0], [0.0, 0.0, 0.0]]])
    for r in (0.0, 4.0):
        means = map_adapt_means(n, px, ubm.means, relevance_factor=r, threshold=0.0)[0]
        np.testing.assert_array_equal(means[1], ubm.means[1])
        a = 3.0 / (3.0 + r)
        np.testing.assert_allclose(means[0], a * np.array([1.0, 2.0, 3.0]), rtol=1e-15)


# -- parameters assigned to a machine ------------------------------------------------------------


def _with_bad(index, value, shape):
    a = np.ones(shape)
    a[index] = value
    return a


@pytest.mark.parametrize("name, value, match", [
    ("means", _with_bad((0, 1), np.nan, (2, 3)), r"GMMMachine.means contains NaN \(first at index \(0, 1\)\)"),
    ("means", _with_bad((1, 2), -np.inf, (2, 3)), r"GMMMachine.means contains infinity \(first at index \(1, 2\)\)"),
    ("variances", _with_bad((1, 2), np.nan, (2, 3)), r"GMMMachine.variances contains NaN \(first at index \(1, 2\)\)"),
    ("variances", np.full((2, 3), np.inf), r"GMMMachine.variances contains infinity"),
    ("weights", np.array([np.nan, 1.0]), r"GMMMachine.weights contains NaN \(first at index \(0,\)\)"),
    ("weights", np.array([-1.0, 1.0]), r"GMMMachine.weights must be >= 0; got -1.0 at index \(0,\)"),
    ("variance_thresholds", np.nan, r"GMMMachine.variance_thresholds contains NaN"),
    ("variance_thresholds", np.array([1e-3, -1.0, 1e-3]),
     r"GMMMachine.variance_thresholds must be >= 0; got -1.0 at index \(1,\)"),
])
def test_non_finite_or_negative_parameters_are_refused_when_assigned(name, value, match):
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.ones((2, 3)), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match=match):
        setattr(m, name, value)
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(m.log_likelihood(X), -0.5 * (3 * np.log(2 * np.pi) + (X**2).sum(1)), rtol=1e-14)


@pytest.mark.parametrize("thresholds", [np.full(4, 0.1), np.full((3, 3), 0.1), np.full((1, 2, 3), 0.1)])
def test_thresholds_that_do_not_fit_the_variances_are_refused_and_nothing_changes(thresholds):
    # numpy's broadcasting error named neither; the thresholds were stored all the same (then
    # saved into a file no reader takes), and (1, C, D) thresholds made the variances 3-D
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.full((2, 3), 0.5), np.array([0.5, 0.5])
    m.variance_thresholds = 1e-3
    match = (r"GMMMachine.variance_thresholds must be a scalar, \(D,\) or \(C, D\) to floor variances "
             rf"of shape \(C, D\) = \(2, 3\); got thresholds of shape {re.escape(str(thresholds.shape))}")
    with pytest.raises(ValueError, match=match):
        m.variance_thresholds = thresholds
    assert m.variance_thresholds == 1e-3
    np.testing.assert_array_equal(m.variances, np.full((2, 3), 0.5))
    # set before the variances, they are refused when the variances come
    fresh = GMMMachine(2)
    fresh.variance_thresholds = thresholds
    with pytest.raises(ValueError, match=match):
        fresh.variances = np.ones((2, 3))


@pytest.mark.parametrize("shape", [(2, 1), (1, 3), (1, 1), (1,)])
def test_thresholds_that_broadcast_still_floor_and_are_saved_as_c_by_d(tmp_path, shape):
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.full((2, 3), 0.5), np.array([0.5, 0.5])
    m.variance_thresholds = np.full(shape, 2.0)  # broadcast as the reference did
    np.testing.assert_array_equal(m.variances, np.full((2, 3), 2.0))
    m.save(tmp_path / "m.h5")  # in a shape the readers take (the reference's too)
    loaded = GMMMachine.from_hdf5(tmp_path / "m.h5")
    np.testing.assert_array_equal(loaded.variance_thresholds, np.full((2, 3), 2.0))
    assert loaded == m


@pytest.mark.parametrize("name", ["means", "variances", "weights", "variance_thresholds"])
def test_complex_parameters_are_refused_not_cut_to_their_real_part(name):
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.ones((2, 3)), np.array([0.5, 0.5])
    before = np.copy(getattr(m, name))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would fail the test too
        with pytest.raises(TypeError, match=rf"^GMMMachine.{name} must hold real numbers; got complex values$"):
            setattr(m, name, before + 1j)
    np.testing.assert_array_equal(getattr(m, name), before)


def test_negative_variances_are_still_floored_silently():  # quirk 32, kept (the reference's MAP example)
    m = GMMMachine(2)
    m.variance_thresholds = 1e-3
    m.variances = -np.ones((2, 3))
    np.testing.assert_array_equal(m.variances, np.full((2, 3), 1e-3))


@pytest.mark.parametrize("assign, match", [
    (dict(weights=np.zeros(2)), r"GMMMachine.weights are all zero"),
    (dict(variance_thresholds=0.0, variances=_with_bad((1, 2), -1.0, (2, 3))),
     r"GMMMachine.variances must be > 0; got 0.0 at index \(1, 2\)"),
    (dict(weights=np.ones(5) / 5), r"GMMMachine.weights must have shape \(n_gaussians,\) = \(2,\); got \(5,\)"),
    (dict(variances=np.ones((3, 3))), r"GMMMachine.variances must have the shape of the means \(2, 3\); got \(3, 3\)"),
    (dict(means=np.zeros(3)), r"GMMMachine.means must have shape \(n_gaussians, n_features\) = \(2, D\); got \(3,\)"),
])
def test_parameters_that_cannot_give_a_likelihood_are_refused_when_used(assign, match):
    # assigned one at a time, they may disagree until all are set: refused at first use, not NaN
    m = GMMMachine(2)
    m.means, m.variances, m.weights = np.zeros((2, 3)), np.ones((2, 3)), np.array([0.5, 0.5])
    for name, value in assign.items():
        setattr(m, name, value)
    X = np.random.default_rng(0).normal(size=(4, 3))
    for use in (m.log_likelihood, m.acc_stats, m.transform):
        with pytest.raises(ValueError, match=match):
            use(X)


def test_a_variance_collapsing_to_zero_in_fit_names_the_floor():
    X = np.repeat(np.random.default_rng(0).normal(size=(3, 3)), 20, axis=0)
    with pytest.raises(ValueError, match="mean_var_update_threshold in fit, must be > 0"):
        GMMMachine(2, mean_var_update_threshold=0, update_variances=True).fit(X)


# -- Gaussians collapsed onto points (variances at the EPS floor) ---------------------------------


def _exact_weighted(m, X):
    """The reference's formula: ``log w - (g + sum (x - mu)**2 / var) / 2``, (C, N)."""
    q = (((X[None] - m.means[:, None]) ** 2) / m.variances[:, None]).sum(-1)
    g = X.shape[1] * np.log(2 * np.pi) + np.log(m.variances).sum(1)
    return np.log(m.weights)[:, None] - 0.5 * (g[:, None] + q)


def _repeated_frames():
    rng = np.random.RandomState(0)
    base = rng.randn(200, 3)
    return np.vstack([base, np.tile(base[:1] + 3, (20, 1))])  # 20 identical frames


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_collapsed_gaussian_gets_the_exact_log_likelihood(dtype, caplog):
    from scipy.special import logsumexp

    X = _repeated_frames()
    with caplog.at_level("WARNING", logger="emkit"):
        m = GMMMachine(4).fit(X)  # default: means only, variances from k-means
    assert np.sum(np.all(m.variances <= np.finfo(float).eps, axis=1)) == 1
    assert any("1 of 4 Gaussians collapsed" in r.getMessage() for r in caplog.records)
    m.compute_dtype = dtype
    exact = _exact_weighted(m, X)
    tol = 1e-9 if dtype == "float64" else 1e-4  # float32 products for the other Gaussians
    assert np.abs(m.log_likelihood(X) - logsumexp(exact, 0)).max() <= tol * 60  # values up to ~60
    collapsed = int(np.argmin(m.variances.max(1)))
    lwl = m.log_weighted_likelihood(X[-20:])[collapsed]
    np.testing.assert_allclose(lwl, exact[collapsed, -20:], rtol=1e-15)  # the direct formula
    stats = m.acc_stats(X)
    assert abs(stats.log_likelihood - logsumexp(exact, 0).sum()) <= tol * 1e3


def test_ml_fit_of_as_many_frames_as_gaussians_converges_at_the_second_iteration(caplog):
    import warnings

    from scipy.special import logsumexp
    from sklearn.exceptions import ConvergenceWarning

    P = np.random.RandomState(0).randn(4, 3)
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="emkit"):
        warnings.simplefilter("error", ConvergenceWarning)
        g = GMMMachine(4, update_variances=True, update_weights=True).fit(P)
    assert g.converged_ is True and g.n_iter_ == 2
    assert any("4 of 4 Gaussians collapsed" in r.getMessage() for r in caplog.records)
    exact = logsumexp(_exact_weighted(g, P), 0)
    np.testing.assert_allclose(g.log_likelihood(P), exact, rtol=1e-14)
    np.testing.assert_allclose(exact, np.log(0.25) - 1.5 * np.log(2 * np.pi * np.finfo(float).eps), rtol=1e-12)


# -- finite frames of extreme magnitude ------------------------------------------------------------


@pytest.mark.parametrize("dtype, factor", [("float64", 1e160), ("float32", 1e25)])
def test_frames_whose_squares_overflow_have_log_likelihood_minus_inf(dtype, factor):
    import warnings

    m = GMMMachine(2, compute_dtype=dtype)
    m.means, m.variances, m.weights = np.array([[0.0, 0.0], [4.0, 4.0]]), np.ones((2, 2)), np.array([0.5, 0.5])
    X = np.array([[1.0, -2.0], [0.5, 0.5], [-3.0, 1.0]])
    far = X * np.array([[factor], [1.0], [factor]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks
        ll = m.log_likelihood(far)
        lwl = m.log_weighted_likelihood(far)
        with pytest.raises(ValueError, match=r"X gave a non-finite log-likelihood: .* too far from the model"):
            m.acc_stats(far)
    assert ll[0] == -np.inf and ll[2] == -np.inf
    np.testing.assert_allclose(ll[1], m.log_likelihood(X[1:2])[0], rtol=1e-6)
    assert not np.isnan(lwl).any() and np.all(lwl[:, [0, 2]] == -np.inf)
