"""scikit-learn conventions: the official estimator checks, get/set_params, clone and pickle.

Checks that cannot pass because emkit keeps the reference's public outputs are listed below with
their reason; every other check must pass.
"""

import pickle

import re

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import GMMMachine, KMeansMachine

TRANSFORM_KEPT = {
    "check_transformer_data_not_an_array": "transform keeps the reference's output and there is no "
    "fit_transform (as in the reference)",
    "check_transformer_general": "same: the reference has no fit_transform",
    "check_do_not_raise_errors_in_init_or_set_params": "invalid arguments raise at construction, as "
    "in the reference (e.g. KMeansMachine(0)); set_params does not raise, fit checks again",
}
KMEANS_EXPECTED = {
    **TRANSFORM_KEPT,
    "check_methods_sample_order_invariance": "KMeansMachine.transform returns (n_clusters, n_samples), "
    "the transpose of scikit-learn's layout, as the reference does",
    "check_fit2d_predict1d": "a 1-D input to predict/transform is one sample, as in the reference",
}
GMM_EXPECTED = {
    **TRANSFORM_KEPT,
    "check_estimators_pickle": "transform returns a list of GMMStats (one per sample), which the check "
    "cannot subtract; pickling itself is tested below",
    "check_methods_sample_order_invariance": "transform returns a list of GMMStats objects",
    "check_methods_subset_invariance": "transform returns a list of GMMStats objects",
    "check_fit_idempotent": "transform returns a list of GMMStats objects; idempotence is tested below",
}


def _expected(estimator):
    return KMEANS_EXPECTED if isinstance(estimator, KMeansMachine) else GMM_EXPECTED


@parametrize_with_checks([KMeansMachine(2, max_iter=5), GMMMachine(2, max_fitting_steps=5)],
                         expected_failed_checks=_expected)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(size=(n // 2, 3)), rng.normal(size=(n - n // 2, 3)) + 4])


ESTIMATORS = [
    lambda: KMeansMachine(3, max_iter=10, random_state=1),
    lambda: GMMMachine(3, update_variances=True, update_weights=True, max_fitting_steps=10, random_state=1),
]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_get_set_params_clone_and_pickle_round_trip(make):
    est = make()
    params = est.get_params()
    twin = clone(est)
    assert twin.get_params() == params
    est.set_params(random_state=5)
    assert est.get_params()["random_state"] == 5

    X = _data()
    fitted = make().fit(X)
    restored = pickle.loads(pickle.dumps(fitted))
    if isinstance(fitted, KMeansMachine):
        np.testing.assert_array_equal(restored.centroids_, fitted.centroids_)
        np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    else:
        np.testing.assert_array_equal(restored.means, fitted.means)
        np.testing.assert_array_equal(restored.log_likelihood(X), fitted.log_likelihood(X))
    # a clone drops the fitted state but refits to the same parameters (fit is deterministic)
    refit = clone(fitted).fit(X)
    assert refit == fitted


def test_gmm_weights_parameter_is_the_constructor_argument_not_the_fitted_weights():
    X = _data()
    gmm = GMMMachine(3, update_weights=True, max_fitting_steps=5).fit(X)
    assert gmm.get_params()["weights"] is None
    assert not np.allclose(gmm.weights, 1 / 3)
    init = np.array([0.2, 0.3, 0.5])
    gmm2 = GMMMachine(3, weights=init)
    assert gmm2.get_params()["weights"] is init
    np.testing.assert_array_equal(gmm2.weights, init)
    assert "weights=array" in repr(gmm2)


def test_reading_the_parameters_fixes_no_weights():
    """A repr or get_params (a notebook display, a log line, clone, set_params) is no first use of
    the weights: MAP starts from the UBM's weights as fitted later, and n_gaussians may change."""
    X = _data()
    ubm = GMMMachine(2, update_weights=True, max_fitting_steps=5)
    gmm = GMMMachine(2, trainer="map", ubm=ubm, max_fitting_steps=2)
    repr(gmm), gmm.get_params(), clone(gmm)
    ubm.fit(X)
    assert not np.allclose(ubm.weights, 0.5)
    np.testing.assert_array_equal(gmm.fit(X[:50]).weights, ubm.weights)  # MAP keeps the UBM's weights
    other = GMMMachine(2, update_weights=True, max_fitting_steps=5).fit(X[::-1] + 1.0)
    gmm = GMMMachine(2, trainer="map", ubm=ubm)
    repr(gmm)
    np.testing.assert_array_equal(gmm.set_params(ubm=other).fit(X[:40]).weights, other.weights)
    assert GMMMachine(2, max_fitting_steps=2).set_params(n_gaussians=3).fit(X).weights.shape == (3,)


def _estimator_classes():
    import emkit
    from emkit.factor_analysis import ISVMachine, JFAMachine
    from emkit.ivector import IVectorMachine

    return [GMMMachine, KMeansMachine, ISVMachine, JFAMachine, IVectorMachine, emkit.PLDA,
            emkit.WCCN, emkit.Whitening, emkit.LinearCalibration]


@pytest.mark.parametrize("cls", _estimator_classes(), ids=lambda cls: cls.__name__)
def test_every_constructor_argument_is_in_the_parameters_section(cls):
    import inspect

    doc = inspect.getdoc(cls)
    section = doc.split("Parameters\n----------\n", 1)[1].split("\n\n")[0] if "----------" in doc else ""
    documented = {name.strip() for line in section.splitlines() if line[:1].strip() and " : " in line
                  for name in line.split(" : ")[0].split(",")}
    assert set(inspect.signature(cls).parameters) <= documented, documented


def _set_params_case():
    from emkit.factor_analysis import ISVMachine
    from emkit.ivector import IVectorMachine

    X = _data()
    y = np.repeat(np.arange(6), len(X) // 6 + 1)[: len(X)]
    ubm = GMMMachine(2, max_fitting_steps=2, convergence_threshold=None).fit(X)
    stats = ubm.transform([X[i * 10:(i + 1) * 10] for i in range(12)])
    return X, y, ubm, stats, np.repeat(np.arange(4), 3), ISVMachine, IVectorMachine


@pytest.mark.parametrize("case", ["wccn_pinv", "whitening_pinv", "plda_threshold", "kmeans_checkpoint",
                                  "gmm_checkpoint", "isv_ubm", "isv_checkpoint", "ivector_sigma",
                                  "ivector_checkpoint", "gmm_kmeans_clusters"])
def test_set_params_values_are_checked_at_fit_naming_the_parameter(case):
    import emkit

    X, y, ubm, stats, labels, ISVMachine, IVectorMachine = _set_params_case()
    fits = {
        "wccn_pinv": (lambda: emkit.WCCN().set_params(pinv="x").fit(X, y), "pinv must be True or False"),
        "whitening_pinv": (lambda: emkit.Whitening().set_params(pinv=None).fit(X), "pinv must be True or False"),
        "plda_threshold": (lambda: emkit.PLDA().set_params(convergence_threshold="x").fit(X, y),
                           "convergence_threshold must be a finite number >= 0 or None; got 'x'"),
        "kmeans_checkpoint": (lambda: KMeansMachine(2).set_params(checkpoint=3).fit(X),
                              "checkpoint must be a file path (str or os.PathLike) or None; got int: 3"),
        "gmm_checkpoint": (lambda: GMMMachine(2).set_params(checkpoint="").fit(X), "checkpoint is an empty path"),
        "isv_ubm": (lambda: ISVMachine(1).set_params(ubm="x").fit(stats, labels),
                    "ubm must be a GMMMachine or None; got str"),
        "isv_checkpoint": (lambda: ISVMachine(1, ubm=ubm).set_params(checkpoint=3).fit(stats, labels),
                           "checkpoint must be a file path"),
        "ivector_sigma": (lambda: IVectorMachine(ubm, 2).set_params(update_sigma="x").fit(stats),
                          "update_sigma must be True or False; got str"),
        "ivector_checkpoint": (lambda: IVectorMachine(ubm, 2).set_params(checkpoint=3).fit(stats),
                               "checkpoint must be a file path"),
        "gmm_kmeans_clusters": (lambda: GMMMachine(2).set_params(k_means_trainer=KMeansMachine(5)).fit(X),
                                "k_means_trainer has n_clusters=5; it must equal n_gaussians=2"),
    }
    fit, message = fits[case]
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        fit()


def test_a_convergence_warning_raised_as_an_error_leaves_a_consistent_estimator():
    """Under ``-W error`` (or simplefilter("error", ConvergenceWarning)) the warning ends fit: the
    fitted attributes set by then belong to that fit, not half to the one before."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X4, X2 = rng.normal(size=(300, 4)), rng.normal(size=(300, 2))
    km = KMeansMachine(3, max_iter=20, convergence_threshold=1e-12).fit(X4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            km.set_params(max_iter=2).fit(X2)
    assert km.centroids_.shape == (3, 2) and km.n_features_in_ == 2 and km.n_iter_ == 2
    assert not km.converged_
    gmm = GMMMachine(2, max_fitting_steps=1, convergence_threshold=1e-12).fit(X4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            gmm.set_params(max_fitting_steps=2).fit(X4)  # (GMM fits continue from their parameters)
    assert gmm.n_iter_ == 2 and not gmm.converged_


def test_array_likes_whose_array_function_refuses_numpy_are_converted():
    """scikit-learn's check_transformer_data_not_an_array: only np.asarray may touch the input."""
    import emkit
    from sklearn.utils.estimator_checks import _NotAnArray

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = np.repeat(np.arange(6), 10)
    for make, args in [(emkit.WCCN, (y,)), (emkit.Whitening, ()), (lambda: KMeansMachine(2), ())]:
        np.testing.assert_array_equal(make().fit(_NotAnArray(X), *args).transform(_NotAnArray(X)),
                                      make().fit(X, *args).transform(X))


class _Frame:
    """The least of a DataFrame: string column names and an array."""

    def __init__(self, values, columns):
        self.values, self.columns = np.asarray(values), list(columns)
        self.shape = self.values.shape

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


@pytest.mark.parametrize("make, supervised", [("WCCN", True), ("Whitening", False), ("LDA", True)])
def test_feature_names_survive_a_save_and_load(tmp_path, make, supervised):
    """A loaded transform forgot them: a DataFrame with its columns reordered was transformed
    (with a warning only) where the original refused it."""
    import emkit
    import emkit.io
    from emkit.lda import LDA

    cls = LDA if make == "LDA" else getattr(emkit, make)
    X = np.random.default_rng(0).normal(size=(60, 5))
    y = np.repeat(np.arange(6), 10)
    est = (cls(2) if cls is LDA else cls()).fit(_Frame(X, "abcde"), *([y] if supervised else []))
    emkit.io.save(est, tmp_path / "t.h5")
    loaded = emkit.io.load(tmp_path / "t.h5")
    assert list(loaded.feature_names_in_) == list("abcde")
    with pytest.raises(ValueError, match="differ from those"):
        loaded.transform(_Frame(X[:, ::-1], "edcba"))
    plain = (cls(2) if cls is LDA else cls()).fit(X, *([y] if supervised else []))
    emkit.io.save(plain, tmp_path / "p.h5")
    assert not hasattr(emkit.io.load(tmp_path / "p.h5"), "feature_names_in_")


@pytest.mark.parametrize("make, supervised", [("WCCN", True), ("Whitening", False), ("LDA", True),
                                              ("KMeansMachine", False), ("LinearCalibration", True)])
def test_feature_names_of_a_data_frame_are_recorded_and_checked(make, supervised):
    """A frame with its columns reordered gave other numbers without a word (for a calibration
    fusing systems given as the columns of a DataFrame: the systems' weights swapped)."""
    import warnings

    import emkit
    from emkit.lda import LDA

    cls = LDA if make == "LDA" else getattr(emkit, make)
    X = np.random.default_rng(0).normal(size=(60, 5))
    y = np.repeat(np.arange(6), 10)
    if make == "LinearCalibration":
        y = np.arange(60) % 2 == 0
        X[y] += 1.0
    args = {"LDA": (2,), "KMeansMachine": (3,)}.get(make, ())
    name = "scores" if make == "LinearCalibration" else "X"
    est = cls(*args).fit(_Frame(X, "abcde"), *([y] if supervised else []))
    assert list(est.feature_names_in_) == list("abcde")
    if make == "KMeansMachine":
        with pytest.raises(ValueError, match="X's feature names"):
            est.predict(_Frame(X[:, ::-1], "edcba"))
    with pytest.raises(ValueError, match=re.escape(f"{name}'s feature names ['e', 'd', 'c', 'b', 'a'] differ from "
                                                   f"those {make} was fitted with, ['a', 'b', 'c', 'd', 'e'] "
                                                   "(the same names in another order)")):
        est.transform(_Frame(X[:, ::-1], "edcba"))
    with pytest.warns(UserWarning, match=f"{name} does not have valid feature names, but {make} was fitted with"):
        np.testing.assert_array_equal(est.transform(X), est.transform(_Frame(X, "abcde")))
    est.fit(X, *([y] if supervised else []))  # a refit on an array forgets the names
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match=f"{name} has feature names, but {make} was fitted without"):
        est.transform(_Frame(X, "abcde"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.transform(X)
