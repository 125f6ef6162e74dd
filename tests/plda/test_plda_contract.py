"""PLDA under the estimators' common contracts: the one EM driver (``resumable_em``: n_iter_,
converged_, ConvergenceWarning at the cap), read-only fitted arrays with a derived-constant cache,
``PLDA._from_fitted`` and the persistence registry (``emkit.io.save``/``load``)."""

import pickle
import warnings

import h5py
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import emkit.io
import emkit.plda
from emkit.plda import PLDA


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(20), 4)
    X = rng.normal(size=(20, 5))[y] * 2 + rng.normal(size=(80, 5))
    return X, y


def _fitted_kwargs(p):
    return dict(mean=p.mean_, F=p.F_, G=p.G_, sigma=p.sigma_, log_likelihood=p.log_likelihood_,
                n_iter=p.n_iter_, converged=p.converged_, n_classes=p.n_classes_, **p.get_params())


def test_fit_runs_the_shared_em_driver(data, monkeypatch):
    calls = []

    def spy(estimator, X, **kwargs):
        calls.append(kwargs["max_iterations"])
        return emkit._checkpoint.resumable_em(estimator, X, **kwargs)

    import emkit._checkpoint

    monkeypatch.setattr(emkit.plda, "resumable_em", spy)
    plda = PLDA(model="simplified", dim_f=2, max_iterations=4, convergence_threshold=None).fit(*data)
    assert calls == [4]
    assert (plda.n_iter_, plda.converged_, plda.log_likelihood_.shape) == (4, False, (5,))


def test_convergence_warning_at_the_iteration_cap(data):
    with pytest.warns(ConvergenceWarning, match=r"PLDA\(full\) did not converge in 2 iterations"):
        plda = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=2,
                    convergence_threshold=1e-12).fit(*data)
    assert plda.n_iter_ == 2 and not plda.converged_


@pytest.mark.parametrize("kwargs", [dict(max_iterations=0), dict(convergence_threshold=None),
                                    dict(max_iterations=500, convergence_threshold=1e-4)])
def test_no_convergence_warning_without_a_failed_threshold(data, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plda = PLDA(**{"max_iterations": 3, **kwargs}).fit(*data)
    assert plda.converged_ == (kwargs.get("max_iterations") == 500)
    assert plda.log_likelihood_.shape == (plda.n_iter_ + 1,)


def test_fitted_arrays_are_read_only_and_refitting_refreshes_the_scoring_cache(data):
    X, y = data
    plda = PLDA(model="simplified", dim_f=2, max_iterations=5).fit(X, y)
    for name in ("mean_", "F_", "sigma_", "log_likelihood_"):
        assert not getattr(plda, name).flags.writeable, name
    with pytest.raises(ValueError):
        plda.F_[0, 0] = 1.0
    before = plda.log_likelihood_ratio(X[:3], X[3:6])
    plda.fit(X[::-1], y[::-1]).set_params(model="two-covariance").fit(X, y)
    fresh = PLDA(model="two-covariance", dim_f=2, max_iterations=5).fit(X, y)
    np.testing.assert_array_equal(plda.log_likelihood_ratio(X[:3], X[3:6]),
                                  fresh.log_likelihood_ratio(X[:3], X[3:6]))
    assert not np.array_equal(before, fresh.log_likelihood_ratio(X[:3], X[3:6]))


def test_unfitted_and_absent_parameters():
    plda = PLDA()
    with pytest.raises(NotFittedError, match="not fitted"):
        plda.F_
    assert not hasattr(plda, "G_") and not hasattr(plda, "mean_")
    for use in (lambda: plda.between_covariance_, lambda: plda.log_likelihood_ratio(np.zeros((1, 3)), np.zeros((1, 3))),
                lambda: plda.log_likelihood(np.zeros((4, 3)), [0, 0, 1, 1])):
        with pytest.raises(NotFittedError, match="not fitted yet"):  # was a plain AttributeError
            use()


@pytest.mark.parametrize("kwargs, message", [
    (dict(variance_threshold=np.inf), "variance_threshold must be a finite float >= 0; got inf"),
    (dict(block_size=0), "block_size must be an integer >= 1"),  # was refused only when scoring
])
def test_hyper_parameters_refused_by_fit(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        PLDA(**kwargs).fit(*data)


def test_constant_data_is_refused_not_modelled_as_noise(data):
    # a model with F = 0 and sigma = 1e-8 I was trained, and scored every trial 0
    with pytest.raises(ValueError, match=r"X is constant \(every row the same\)"):
        PLDA(max_iterations=5).fit(np.ones((24, 3)), np.arange(24) % 4)
    X, y = data
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(ValueError, match="the scatter of X overflows float64"):  # was LinAlgError
        PLDA("full", max_iterations=5).fit(X * 1e300, y)


@pytest.mark.parametrize("model", ["two-covariance", "simplified", "full"])
def test_from_fitted_rebuilds_an_equal_model(data, model):
    X, y = data
    plda = PLDA(model=model, dim_f=2, dim_g=2, max_iterations=6).fit(X, y)
    rebuilt = PLDA._from_fitted(**_fitted_kwargs(plda))
    assert rebuilt.get_params() == plda.get_params()
    assert (rebuilt.n_iter_, rebuilt.converged_, rebuilt.n_classes_, rebuilt.n_features_in_) == \
        (plda.n_iter_, plda.converged_, plda.n_classes_, 5)
    assert (rebuilt.G_ is None) == (model != "full")
    np.testing.assert_array_equal(rebuilt.log_likelihood_ratio(X[:4], X[4:9]),
                                  plda.log_likelihood_ratio(X[:4], X[4:9]))
    F = np.array(plda.F_)
    PLDA._from_fitted(**{**_fitted_kwargs(plda), "F": F})
    F[0, 0] = 99.0  # the arrays were copied
    assert rebuilt.F_[0, 0] != 99.0


def test_pickle_leaves_out_the_cache_and_keeps_arrays_read_only(data):
    plda = PLDA(model="full", dim_f=2, dim_g=2, max_iterations=3).fit(*data)
    plda.log_likelihood_ratio(data[0][:2], data[0][:2])  # fills the cache
    assert "_derived_cache" in plda.__dict__
    again = pickle.loads(pickle.dumps(plda))
    assert "_derived_cache" not in again.__dict__
    assert not again.F_.flags.writeable and not again.G_.flags.writeable


def test_registry_save_and_load(data, tmp_path):
    plda = PLDA(model="full", dim_f=2, dim_g=1, max_iterations=3).fit(*data)
    emkit.io.save(plda, tmp_path / "p.h5")
    for loaded in (emkit.io.load(tmp_path / "p.h5"), emkit.io.load(tmp_path / "p.h5", PLDA),
                   PLDA.from_hdf5(tmp_path / "p.h5")):
        assert type(loaded) is PLDA
        np.testing.assert_array_equal(loaded.G_, plda.G_)
    from emkit.io._registry import load_from, save_into

    with h5py.File(tmp_path / "nested.h5", "w") as f:
        save_into(f, "backend", plda)
    with h5py.File(tmp_path / "nested.h5", "r") as f:
        assert f["backend"].attrs["emkit_class"] == "PLDA"
        np.testing.assert_array_equal(load_from(f, "backend", PLDA).sigma_, plda.sigma_)


def test_plda_module_leaves_blas_threads_to_the_backend():
    import inspect

    source = inspect.getsource(emkit.plda)
    assert "single_threaded_blas" not in source and "threadpoolctl" not in source


def test_dask_labels_give_the_numpy_labels_results(data):
    import dask.array as da

    X, y = data
    yd = da.from_array(y, chunks=25)
    for Xs in (X, da.from_array(X, chunks=25)):
        got, want = PLDA(dim_f=2, dim_g=2).fit(Xs, yd), PLDA(dim_f=2, dim_g=2).fit(X, y)
        np.testing.assert_allclose(got.log_likelihood_, want.log_likelihood_, rtol=1e-12)
        np.testing.assert_allclose(got.F_, want.F_, rtol=1e-10, atol=1e-12)
    assert got.log_likelihood(X, yd) == pytest.approx(want.log_likelihood(X, y), rel=1e-12)
    enrolled, expected = want.enroll(X, yd), want.enroll(X, y)
    np.testing.assert_array_equal(enrolled.means, expected.means)
    assert list(enrolled.labels) == list(expected.labels) == list(range(20))
