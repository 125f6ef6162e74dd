"""The reference's namespace beyond its classes: submodules as attributes of the package,
``utils``, ISV's V and the i-vector machine's bob tags (bob.learn.em 3.3.1, sections 0.2, 1, 2)."""

import dask.array as da
import numpy as np
import pytest

import emkit
from emkit import GMMMachine, ISVMachine, IVectorMachine
from emkit.utils import array_to_delayed_list, check_and_persist_dask_input


@pytest.mark.parametrize("name", ["factor_analysis", "gmm", "ivector", "kmeans", "utils", "wccn",
                                  "whitening"])
def test_submodules_are_attributes_of_the_package(name):
    module = getattr(emkit, name)
    assert module.__name__ == f"emkit.{name}"
    assert name in emkit.__all__


def test_linear_scoring_stays_the_function():
    import emkit.linear_scoring  # binding the submodule must not replace the function

    assert callable(emkit.linear_scoring) and emkit.linear_scoring.__name__ == "linear_scoring"


def test_check_and_persist_dask_input():
    is_dask, out = check_and_persist_dask_input([[1.0, 2.0], [3.0, 4.0]])
    assert is_dask is False and isinstance(out, np.ndarray) and out.shape == (2, 2)
    x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    is_dask, out = check_and_persist_dask_input(x)
    assert is_dask is True and isinstance(out, da.Array)
    np.testing.assert_array_equal(out.compute(), np.arange(12.0).reshape(6, 2))
    is_dask, out = check_and_persist_dask_input(x, persist=False)
    assert out is x


def test_array_to_delayed_list():
    x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=(2, 2))
    parts = array_to_delayed_list(x, True)
    assert len(parts) == 3
    np.testing.assert_array_equal(parts[1].compute(), [[4.0, 5.0], [6.0, 7.0]])
    y = np.zeros((2, 2))
    assert array_to_delayed_list(y, False) is y
    with pytest.raises(TypeError, match="data must be a dask array when input_is_dask is True"):
        array_to_delayed_list(y, True)


def _ubm():
    ubm = GMMMachine(2)
    ubm.means, ubm.variances = np.zeros((2, 3)), np.ones((2, 3))
    return ubm


def test_isv_V_is_the_integer_zero():
    isv = ISVMachine(2, ubm=_ubm())
    assert isv.V == 0 and isinstance(isv.V, int)
    assert isv.U.shape == (6, 2)  # (U and D are the drawn ones, as before)


def test_ivector_machine_has_the_reference_bob_tags():
    tags = IVectorMachine(_ubm())._more_tags()
    assert tags == {"requires_fit": True, "bob_fit_supports_dask_bag": True}


@pytest.mark.parametrize("module, names", [
    ("factor_analysis", ["GMMMachine", "GMMStats", "check_and_persist_dask_input",
                         "linear_scoring"]),
    ("ivector", ["GMMMachine", "GMMStats"]),
    ("gmm", ["array_to_delayed_list", "check_and_persist_dask_input"]),
    ("kmeans", ["array_to_delayed_list", "check_and_persist_dask_input"]),
])
def test_names_the_reference_modules_import_can_be_imported_from_them(module, names):
    # (``from bob.learn.em.factor_analysis import GMMMachine`` worked in user code)
    import importlib

    found = importlib.import_module(f"emkit.{module}")
    for name in names:
        assert getattr(found, name) is getattr(emkit.utils, name, None) or \
            getattr(found, name) is getattr(emkit, name)


def test_gmm_logaddexp_reduce_and_reduce_loglikelihood():
    from emkit.gmm import log_likelihood, log_weighted_likelihood, logaddexp_reduce, \
        reduce_loglikelihood

    ubm = _ubm()
    ubm.weights = np.array([0.25, 0.75])
    ubm.means = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    x = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 4.0]])
    lwl = log_weighted_likelihood(x, ubm)
    expected = np.log(np.exp(lwl).sum(axis=0))
    np.testing.assert_allclose(reduce_loglikelihood(lwl), expected, rtol=1e-14)
    np.testing.assert_allclose(reduce_loglikelihood(lwl), log_likelihood(x, ubm), rtol=1e-14)
    lazy = reduce_loglikelihood(da.from_array(lwl, chunks=(1, 2)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=1e-14)
    assert logaddexp_reduce(lwl, keepdims=True).shape == (1, 3)
    np.testing.assert_allclose(logaddexp_reduce(lwl.T, axis=1), expected, rtol=1e-14)
    assert logaddexp_reduce(np.zeros((0, 2))).tolist() == [-np.inf, -np.inf]


def test_ml_m_step_takes_the_map_keywords_the_reference_m_step_passes_to_both():
    # user code dispatching as the reference's gmm.m_step does:
    #     step = map_gmm_m_step if machine.trainer == "map" else ml_gmm_m_step
    #     step(machine=..., statistics=..., ..., reynolds_adaptation=..., alpha=..., ...)
    from emkit.gmm import ml_gmm_m_step

    x = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [3.0, 0.0, 4.0]])
    plain, dispatched = _ubm(), _ubm()
    ml_gmm_m_step(plain, plain.acc_stats(x))
    ml_gmm_m_step(machine=dispatched, statistics=dispatched.acc_stats(x), update_means=True,
                  update_variances=False, update_weights=False, mean_var_update_threshold=1e-16,
                  reynolds_adaptation=True, alpha=0.5, relevance_factor=4)
    np.testing.assert_array_equal(dispatched.means, plain.means)
    assert np.abs(plain.means).sum() > 0
    with pytest.raises(TypeError, match="'relevance'.*only the MAP keywords"):
        ml_gmm_m_step(dispatched, dispatched.acc_stats(x), relevance=4)


def test_kmeans_chunk_helpers_give_the_cluster_variances_and_weights():
    from emkit.kmeans import accumulate_indices_means_vars, reduce_indices_means_vars

    x = np.array([[0.0, 1.0], [2.0, 1.0], [10.0, 10.0], [12.0, 14.0], [11.0, 12.0]])
    means = np.array([[1.0, 1.0], [11.0, 12.0], [100.0, 100.0]])  # the last gets no sample
    parts = [accumulate_indices_means_vars(x[:2], means),
             accumulate_indices_means_vars(da.from_array(x[2:]), means)]
    np.testing.assert_array_equal(parts[1][0], [1, 1, 1])
    np.testing.assert_array_equal(parts[1][1], [[0, 0], [33, 36], [0, 0]])
    np.testing.assert_array_equal(parts[1][2], [[0, 0], [365, 440], [0, 0]])
    variances, weights = reduce_indices_means_vars(parts)
    np.testing.assert_allclose(weights, [0.4, 0.6, 0.0], rtol=1e-15)
    # an empty cluster: the variance of all the data (the reference's NaN), as
    # KMeansMachine.get_variances_and_weights_for_each_cluster
    np.testing.assert_allclose(variances, [[1.0, 0.0], [2 / 3, 8 / 3], x.var(axis=0)], rtol=1e-12)
    machine = emkit.KMeansMachine(3, init_method=means, max_iter=0).fit(x)
    expected = machine.get_variances_and_weights_for_each_cluster(x)
    np.testing.assert_allclose(variances, expected[0], rtol=1e-12)
    np.testing.assert_allclose(weights, expected[1], rtol=1e-15)
    with pytest.raises(ValueError, match="stats is empty"):
        reduce_indices_means_vars([])
    with pytest.raises(ValueError, match="data"):
        accumulate_indices_means_vars(np.array([[np.nan, 0.0]]), means)
