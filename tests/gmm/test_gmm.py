"""GMMMachine behaviour: EM invariants, numpy/dask equivalence, the float32 opt-in, bad input."""

import logging
import re

import dask.array as da
import numpy as np
import pytest

from emkit import GMMMachine, KMeansMachine, config_context
from emkit.gmm import e_step, m_step
from _parity import assert_parity, max_rel_diff


def _blobs(seed=0, n=600, d=3):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [4.0] * d, [-3.0, 5.0, 1.0][:d]])
    sizes = [n // 2, n // 3, n - n // 2 - n // 3]
    return np.vstack([c + rng.normal(scale=s, size=(k, d)) for c, k, s in zip(centres, sizes, (1, 0.5, 1.5))])


def _start(X, C=3, seed=1):
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), C, replace=False)].copy(), np.tile(X.var(0), (C, 1)), np.full(C, 1 / C)


def _ml(X, steps=30, threshold=None, **kw):
    means, variances, weights = _start(np.asarray(X, dtype=np.float64))
    m = GMMMachine(3, max_fitting_steps=steps, convergence_threshold=threshold, update_variances=True,
                   update_weights=True, **kw)
    m.means, m.variances, m.weights = means, variances, weights
    return m


def test_ml_log_likelihood_never_decreases():
    X = _blobs()
    m = _ml(X)
    history = []
    for _ in range(25):
        stats = e_step(X, m)
        history.append(stats.log_likelihood / stats.t)
        m_step([stats], m)
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[:-1]))
    assert history[-1] > history[0]


def test_module_m_step_names_statistics_it_cannot_use():
    # an empty list said "nothing to sum: the input holds no chunks", an item that is not a
    # GMMStats raised AttributeError, statistics of another shape failed inside numpy
    X = _blobs(3)
    m = _ml(X)
    before = m.means.copy()
    other = GMMMachine(2, update_variances=True)
    other.means, other.variances = np.zeros((2, 3)), np.ones((2, 3))
    cases = [([], ValueError, "statistics is empty: m_step needs at least one GMMStats"),
             ([e_step(X, m), 1], TypeError, "statistics[1] must be a GMMStats; got int"),
             # (it said "the UBM has (3, 3)": an ML machine has no UBM)
             ([e_step(X, other)], ValueError, "statistics[0] has statistics of shape "
              "(n_gaussians, n_features) = (2, 3); the GMM machine has (3, 3)")]
    for statistics, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            m_step(statistics, m)
    np.testing.assert_array_equal(m.means, before)


def test_shape_errors_name_the_ubm_only_for_map_priors():
    X = _blobs(3)
    ubm = _ml(X)
    wrong = GMMMachine(2)
    wrong.means, wrong.variances = np.zeros((2, 3)), np.ones((2, 3))
    stats = e_step(X, wrong)
    # adapt: the statistics must be those of the UBM, the prior
    with pytest.raises(ValueError, match=re.escape("stats has statistics of shape (n_gaussians, "
                                                   "n_features) = (2, 3); the UBM has (3, 3)")):
        GMMMachine(3, trainer="map", ubm=ubm).adapt(stats)
    # m_step of a MAP machine: those of the machine given
    with pytest.raises(ValueError, match=re.escape("statistics[0] has statistics of shape "
                                                   "(n_gaussians, n_features) = (2, 3); the GMM "
                                                   "machine has (3, 3)")):
        m_step([stats], GMMMachine(3, trainer="map", ubm=ubm))


def test_fit_equals_explicit_e_and_m_steps():
    X = _blobs(2)
    fitted = _ml(X, steps=7).fit(X)
    manual = _ml(X, steps=7)
    for _ in range(7):
        m_step(e_step(X, manual), manual)
    assert max_rel_diff(fitted.means, manual.means) < 1e-13
    assert max_rel_diff(fitted.variances, manual.variances) < 1e-13
    assert fitted.n_iter_ == 7


def test_convergence_threshold_stops_early():
    X = _blobs(3)
    m = _ml(X, steps=500, threshold=1e-8).fit(X)
    assert 2 <= m.n_iter_ < 500


@pytest.mark.parametrize("chunks", [600, 100, 37, (250, 350)])
def test_numpy_and_dask_inputs_give_the_same_parameters(chunks):
    X = _blobs(4)
    ref = _ml(X, steps=10).fit(X)
    dx = da.from_array(X, chunks=(chunks, 3) if not isinstance(chunks, tuple) else (chunks, (3,)))
    got = _ml(X, steps=10).fit(dx)
    for name in ("means", "variances", "weights"):
        assert max_rel_diff(getattr(got, name), getattr(ref, name)) < 1e-10, name
    assert_parity(got.log_likelihood(dx).compute(), ref.log_likelihood(X), tol=1e-12)
    assert max_rel_diff(got.acc_stats(dx).sum_px, ref.acc_stats(X).sum_px) < 1e-10


def test_default_initialisation_is_the_same_for_numpy_and_dask():
    X = _blobs(5)
    a = GMMMachine(3, max_fitting_steps=5).fit(X)
    b = GMMMachine(3, max_fitting_steps=5).fit(da.from_array(X, chunks=(77, 3)))
    assert max_rel_diff(b.means, a.means) < 1e-10
    assert max_rel_diff(b.variances, a.variances) < 1e-10


def test_results_do_not_depend_on_block_size_or_threads():
    X = _blobs(6, n=20000)
    ref = _ml(X, steps=3).fit(X)
    with config_context(block_rows=333):
        other = _ml(X, steps=3).fit(X)
    assert max_rel_diff(other.means, ref.means) < 1e-12
    # the threaded reduction has a fixed order: repeated runs are bit-identical
    again = _ml(X, steps=3).fit(X)
    np.testing.assert_array_equal(again.means, ref.means)


def test_float32_opt_in_is_close_to_float64_and_keeps_float64_parameters():
    X = _blobs(7).astype(np.float32)
    a = _ml(X, steps=10).fit(X)
    b = _ml(X, steps=10, compute_dtype="float32").fit(X)
    assert b.means.dtype == np.float64 and b.variances.dtype == np.float64
    np.testing.assert_allclose(b.means, a.means, rtol=1e-4, atol=1e-4)
    # float32 input, default precision: parameters computed in float64 from the float32 values
    c = _ml(X.astype(np.float64), steps=10).fit(X.astype(np.float64))
    assert max_rel_diff(a.means, c.means) < 1e-12


@pytest.mark.parametrize("spread", [0.3, 1.0])
def test_float32_variances_within_the_documented_bound(spread):
    """compute_dtype docstring: float32 variances differ from float64 by less than 1e-5 (1 +
    kappa) (measured 1.5e-7 and 7e-7 (1 + kappa): with 94 frames a Gaussian the posteriors'
    noise dominates), means by about 1e-6."""
    rng = np.random.RandomState(1)
    X = np.vstack([rng.randn(300, 10) * s * spread + 3 * rng.randn(10) for s in (0.5, 1, 2, 1, 0.7)])
    start = GMMMachine(16, max_fitting_steps=2, update_variances=True, update_weights=True).fit(X)

    def one_iteration(dtype):
        m = GMMMachine(16, max_fitting_steps=1, convergence_threshold=None, update_variances=True,
                       update_weights=True, compute_dtype=dtype)
        m.means, m.variances, m.weights = start.means, start.variances, start.weights
        return m.fit(X)

    a, b = one_iteration("float64"), one_iteration("float32")
    kappa = np.max((start.means - start.means.mean(axis=0)) ** 2 / start.variances)
    assert np.max(np.abs(b.variances / a.variances - 1)) < 1e-5 * (1 + kappa)
    assert max_rel_diff(b.means, a.means) < 1e-5 and max_rel_diff(b.weights, a.weights) < 1e-4


def test_map_adapts_towards_the_data_and_keeps_prior_for_unseen_gaussians():
    X = _blobs(8)
    ubm = _ml(X, steps=20).fit(X)
    client_data = X[:50]  # only the first blob
    m = GMMMachine(3, trainer="map", ubm=ubm, max_fitting_steps=1, update_weights=True).fit(client_data)
    stats = ubm.acc_stats(client_data)
    alpha = stats.n / (stats.n + 4)
    expected = alpha[:, None] * stats.sum_px / stats.n[:, None] + (1 - alpha[:, None]) * ubm.means
    assert max_rel_diff(m.means, expected) < 1e-12
    np.testing.assert_allclose(m.weights.sum(), 1.0)
    assert m.ubm is ubm and m.trainer == "map"


def test_map_variance_update_follows_reynolds():
    X = _blobs(9)
    ubm = _ml(X, steps=20).fit(X)
    data = X[::7]
    m = GMMMachine(3, trainer="map", ubm=ubm, max_fitting_steps=1, update_variances=True).fit(data)
    s = ubm.acc_stats(data)
    a = (s.n / (s.n + 4))[:, None]
    mean = a * s.sum_px / s.n[:, None] + (1 - a) * ubm.means
    var = a * s.sum_pxx / s.n[:, None] + (1 - a) * (ubm.variances + ubm.means**2) - mean**2
    assert max_rel_diff(m.variances, var) < 1e-10
    assert np.all(m.variances > 0.05)  # the reference's formula floored these to EPS


def test_variance_floor_scalar_per_feature_and_per_gaussian():
    m = GMMMachine(2)
    m.means = np.zeros((2, 3))
    m.variances = np.array([[1e-20, 1.0, 2.0], [3.0, -1.0, 0.5]])
    assert np.all(m.variances >= np.finfo(float).eps)
    m.variance_thresholds = 0.7
    np.testing.assert_array_equal(m.variances, [[0.7, 1.0, 2.0], [3.0, 0.7, 0.7]])
    m.variance_thresholds = np.array([0.1, 1.5, 0.1])
    np.testing.assert_array_equal(m.variances[:, 1], [1.5, 1.5])
    m.variance_thresholds = np.full((2, 3), 2.5)
    assert np.all(m.variances >= 2.5)
    np.testing.assert_allclose(m.g_norms, 3 * np.log(2 * np.pi) + np.log(m.variances).sum(1))


def test_k_means_trainer_is_used_and_fitted():
    X = _blobs(10)
    km = KMeansMachine(3, init_method="random", random_state=3)
    gmm = GMMMachine(3, k_means_trainer=km, max_fitting_steps=2).fit(X)
    assert km.centroids_ is not None
    assert gmm.means.shape == (3, 3)


def test_logging_reports_iterations(caplog):
    X = _blobs(11)
    with caplog.at_level(logging.INFO, logger="emkit"):
        _ml(X, steps=3).fit(X)
    assert sum("iteration " in r.getMessage() for r in caplog.records) == 3


def test_gaussians_collapsed_onto_points_are_reported(caplog):
    """ML training of the variances on repeated frames leaves Gaussians with every variance at
    the floor (scores about 1e18): a one-line warning says how many; healthy data say nothing."""
    from emkit._gmm_mstep import collapsed_gaussians

    points = np.repeat(np.random.default_rng(0).normal(size=(3, 2)) * 10, 20, axis=0)
    with caplog.at_level(logging.WARNING, logger="emkit"):
        ubm = GMMMachine(3, update_variances=True, update_weights=True, max_fitting_steps=3,
                         convergence_threshold=None).fit(points)
    assert collapsed_gaussians(ubm) == 3
    [record] = [r for r in caplog.records if "collapsed" in r.getMessage()]
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert record.getMessage().startswith("GMM: 3 of 3 Gaussians collapsed onto single points")
    caplog.clear()
    X = _blobs(12)
    with caplog.at_level(logging.WARNING, logger="emkit"):
        healthy = _ml(X, steps=5).fit(X)
    assert collapsed_gaussians(healthy) == 0 and not caplog.records


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, np.nan, 2.0]] * 5), "NaN"),
    (np.array([[1.0, np.inf, 2.0]] * 5), "infinity"),
    (np.empty((0, 3)), "0 sample"),
    (np.ones(3), "1D"),
])
def test_bad_frames_raise_naming_the_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        GMMMachine(2).fit(bad)


@pytest.mark.parametrize("estimator", [GMMMachine(2), KMeansMachine(2)])
def test_empty_training_data_names_x_and_the_estimator(estimator):
    name = type(estimator).__name__
    with pytest.raises(ValueError, match=re.escape(f"X has 0 sample(s) (shape=(0, 3)): {name} needs at least 1")):
        estimator.fit(np.empty((0, 3)))


def test_bad_parameters_raise_in_fit():
    X = _blobs()
    with pytest.raises(ValueError, match="UBM is required"):
        GMMMachine(3, trainer="map").fit(X)
    with pytest.raises(ValueError, match="not compatible"):
        GMMMachine(2, trainer="map", ubm=_ml(X, steps=1).fit(X)).fit(X)
    with pytest.raises(ValueError, match="n_gaussians"):
        GMMMachine(0).fit(X)
    with pytest.raises(ValueError, match="convergence_threshold and max_fitting_steps"):
        GMMMachine(3, max_fitting_steps=None, convergence_threshold=None).fit(X)
    m = _ml(X)
    with pytest.raises(ValueError, match="features"):
        m.log_likelihood(np.ones((4, 5)))


def test_nan_in_dask_input_is_reported():
    X = _blobs()
    X[17, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        _ml(_blobs()).fit(da.from_array(X, chunks=100))


def test_inputs_are_not_mutated():
    X = _blobs()
    X.setflags(write=False)
    copy = X.copy()
    m = _ml(X, steps=3).fit(X)
    means = m.means.copy()
    m.transform([X[:10]])
    np.testing.assert_array_equal(X, copy)
    np.testing.assert_array_equal(m.means, means)


# -- issue 12: the EM contract and fitted state ----------------------------------------------


def test_converged_is_true_when_the_threshold_stops_training_and_false_at_the_cap():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X = _blobs(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the suite ignores it by default
        m = _ml(X, steps=500, threshold=1e-8).fit(X)
    assert m.converged_ is True and 2 <= m.n_iter_ < 500
    with pytest.warns(ConvergenceWarning, match="GMM ML did not converge in 2 iterations") as caught:
        capped = _ml(X, steps=2, threshold=1e-8).fit(X)
    assert caught[0].filename == __file__  # the user's line (was emkit's _em.py)
    assert capped.converged_ is False and capped.n_iter_ == 2


def test_the_default_k_means_start_that_does_not_converge_names_a_parameter_of_gmmmachine():
    from sklearn.exceptions import ConvergenceWarning

    X = np.random.default_rng(0).uniform(size=(1500, 2))  # 16 k-means clusters need > 20 iterations
    with pytest.warns(ConvergenceWarning, match=re.escape(
            "k-means did not converge in 20 iterations (relative change above 1e-05); raise max_iter "
            "or convergence_threshold (GMMMachine's k-means start: pass "
            "k_means_trainer=KMeansMachine(n_gaussians, max_iter=...))")) as caught:
        GMMMachine(16, max_fitting_steps=1).fit(X)
    assert caught[0].filename == __file__  # (the k-means start runs deeper in emkit than a fit)


def test_parameters_are_read_only_copies_and_the_variance_floor_applies_on_assignment():
    means = np.array([[0.0, 1.0], [2.0, 3.0]])
    m = GMMMachine(2)
    m.means = means
    means[0, 0] = 99.0
    assert m.means[0, 0] == 0.0 and m.means.dtype == np.float64
    with pytest.raises(ValueError, match="read-only"):
        m.means[0, 0] = 1.0
    m.variance_thresholds = np.array([0.5, 0.1])
    m.variances = np.full((2, 2), 0.2)
    np.testing.assert_array_equal(m.variances, [[0.5, 0.2], [0.5, 0.2]])
    m.variance_thresholds = 0.3  # a new floor floors the stored variances again
    np.testing.assert_array_equal(m.variances, [[0.5, 0.3], [0.5, 0.3]])


def test_e_step_constants_are_computed_once_per_parameter_change():
    X = _blobs(5)
    m = _ml(X, steps=3).fit(X)
    coef = m._coefficients()
    assert m._coefficients() is coef and m.g_norms is m.g_norms
    ll = m.log_likelihood(X)
    m.means = m.means + 1.0
    assert m._coefficients() is not coef
    fresh = GMMMachine(3)
    fresh.means, fresh.variances, fresh.weights = m.means, m.variances, m.weights
    np.testing.assert_array_equal(m.log_likelihood(X), fresh.log_likelihood(X))
    assert not np.array_equal(m.log_likelihood(X), ll)


def test_init_stores_the_parameters_only_and_the_machine_starts_from_the_ubm():
    X = _blobs(6)
    ubm = _ml(X, steps=3).fit(X)
    m = GMMMachine(3, trainer="map", ubm=ubm, weights=np.array([0.2, 0.3, 0.5]))
    assert set(vars(m)) == set(m.get_params(deep=False)) - {"weights"} | {"_weights_param"}
    np.testing.assert_array_equal(m.means, ubm.means)
    np.testing.assert_array_equal(m.variances, ubm.variances)
    np.testing.assert_array_equal(m.weights, [0.2, 0.3, 0.5])  # the argument over the UBM's
    assert m.means is not ubm.means  # a copy, taken on first use
    np.testing.assert_array_equal(GMMMachine(4).weights, np.full(4, 0.25))
    with pytest.raises(ValueError, match="means were never set"):
        GMMMachine(2).means


@pytest.mark.parametrize("trainer", ["map", "ml"])
def test_the_ubm_variances_are_floored_at_mean_var_update_threshold_as_the_reference_does(trainer):
    # the reference's constructor assigns the UBM's variances under its own initial floor,
    # mean_var_update_threshold, then adopts the UBM's thresholds (quirk 13, kept)
    ubm = GMMMachine(2)
    ubm.means, ubm.weights = np.zeros((2, 2)), np.full(2, 0.5)
    ubm.variances = np.array([[1e-4, 1.0], [1e-2, 2.0]])
    m = GMMMachine(2, trainer=trainer, ubm=ubm, mean_var_update_threshold=1e-3)
    np.testing.assert_array_equal(m.variances, [[1e-3, 1.0], [1e-2, 2.0]])
    assert m.variance_thresholds == ubm.variance_thresholds
    ubm.variance_thresholds = 5e-3
    np.testing.assert_array_equal(GMMMachine(2, trainer=trainer, ubm=ubm, mean_var_update_threshold=1e-3).variances,
                                  [[5e-3, 1.0], [1e-2, 2.0]])


def test_pickle_and_load_drop_the_cached_constants(tmp_path):
    import pickle

    X = _blobs(7)
    a, b = _ml(X, steps=2).fit(X), _ml(X, steps=6).fit(X)
    restored = pickle.loads(pickle.dumps(a))
    assert "_derived_cache" not in pickle.loads(pickle.dumps(GMMMachine(3))).__dict__
    assert not restored.means.flags.writeable
    np.testing.assert_array_equal(restored.log_likelihood(X), a.log_likelihood(X))
    b.save(tmp_path / "b.h5")
    a.load(tmp_path / "b.h5")  # a's cached constants were a's: they must go
    np.testing.assert_array_equal(a.log_likelihood(X), b.log_likelihood(X))


@pytest.mark.parametrize("cls", [GMMMachine, KMeansMachine])
def test_every_attribute_fit_sets_is_documented(cls):
    import inspect

    fitted = cls(2, random_state=0).fit(np.random.default_rng(0).normal(size=(40, 3)))
    doc = inspect.getdoc(cls)
    attributes = doc[doc.index("Attributes\n"):]
    missing = [name for name in vars(fitted) if name.endswith("_") and not name.startswith("_")
               and not re.search(rf"\b{name}\W", attributes)]
    assert not missing, missing
