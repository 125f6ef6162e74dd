"""Feature-name warnings point at the user's call, however deep in emkit (or in scikit-learn's
``set_output`` wrapper) the check ran: a fixed ``stacklevel`` attributed them to emkit's own
lines (plda.py for ``log_likelihood_ratio``, scikit-learn's _set_output.py for ``transform``)."""

import warnings

import numpy as np
import pytest
from data_frames import Frame

from emkit.calibration import LinearCalibration
from emkit.gmm import GMMMachine
from emkit.kmeans import KMeansMachine
from emkit.lda import LDA
from emkit.plda import PLDA
from emkit.wccn import WCCN
from emkit.whitening import Whitening

NAMES = ["f0", "f1", "f2", "f3"]
RNG = np.random.default_rng(0)
Y = np.repeat(np.arange(6), 10)
X = RNG.normal(size=(6, 4))[Y] * 3.0 + RNG.normal(size=(60, 4))
SCORES = np.c_[RNG.normal(size=60) + 2 * (Y % 2), RNG.normal(size=60) + (Y % 2)]


def _quietly(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (few EM steps: convergence warnings)
        return fit()


def _fitted(kind, named):
    """``kind`` fitted on a frame with column names (``named``) or on a plain array."""
    data = Frame(X, NAMES) if named else X
    if kind == "gmm":
        return _quietly(lambda: GMMMachine(2, max_fitting_steps=2).fit(data))
    if kind == "kmeans":
        return _quietly(lambda: KMeansMachine(2, max_iter=2).fit(data))
    if kind == "plda":
        return _quietly(lambda: PLDA(max_iterations=2).fit(data, Y))
    if kind == "calibration":
        scores = Frame(SCORES, ["system_a", "system_b"]) if named else SCORES
        return LinearCalibration().fit(scores, Y % 2)
    return {"whitening": lambda: Whitening().fit(data), "wccn": lambda: WCCN().fit(data, Y),
            "lda": lambda: LDA(2).fit(data, Y)}[kind]()


# each call on one line: the warning must name this file and that line
CALLS = {
    "gmm": [lambda m, x: m.log_likelihood(x),
            lambda m, x: m.log_weighted_likelihood(x),
            lambda m, x: m.acc_stats(x),
            lambda m, x: m.transform([x[:30], x[30:]]),
            lambda m, x: GMMMachine(2, trainer="map", ubm=m, max_fitting_steps=1).fit(x)],
    "kmeans": [lambda m, x: m.transform(x),
               lambda m, x: m.predict(x),
               lambda m, x: m.get_variances_and_weights_for_each_cluster(x)],
    "plda": [lambda m, x: m.log_likelihood_ratio(x, x),
             lambda m, x: m.log_likelihood_ratio([x[:10], x[10:20]], x[:5]),
             lambda m, x: m.log_likelihood(x, Y),
             lambda m, x: m.enroll(x, Y)],
    "whitening": [lambda m, x: m.transform(x)],
    "wccn": [lambda m, x: m.transform(x)],
    "lda": [lambda m, x: m.transform(x)],
    "calibration": [lambda m, x: m.transform(x)],
}
CASES = [(kind, i) for kind, calls in CALLS.items() for i in range(len(calls))]


def _input(kind, named):
    values, names = (SCORES, ["system_a", "system_b"]) if kind == "calibration" else (X, NAMES)
    return Frame(values, names) if named else values


def _feature_name_warnings(call, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(*args)
    return [w for w in caught if "feature names" in str(w.message)]


@pytest.mark.parametrize("kind, index", CASES)
def test_arrays_given_to_an_estimator_fitted_with_names_warn_at_the_callers_line(kind, index):
    call = CALLS[kind][index]
    caught = _feature_name_warnings(call, _fitted(kind, named=True), _input(kind, named=False))
    assert caught and all("does not have valid feature names" in str(w.message) for w in caught)
    assert all(w.category is UserWarning for w in caught)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, call.__code__.co_firstlineno)] * len(caught)


@pytest.mark.parametrize("kind", list(CALLS))
def test_names_given_to_an_estimator_fitted_without_warn_at_the_callers_line(kind):
    call = CALLS[kind][0]
    caught = _feature_name_warnings(call, _fitted(kind, named=False), _input(kind, named=True))
    assert caught and all("has feature names, but" in str(w.message) for w in caught)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, call.__code__.co_firstlineno)] * len(caught)


def test_the_plda_reproducer_warns_at_the_callers_line():
    plda = _fitted("plda", named=True)
    with pytest.warns(UserWarning, match="does not have valid feature names") as caught:
        plda.log_likelihood_ratio(X, X)
    assert {w.filename for w in caught} == {__file__}


def test_kmeans_cluster_variances_refuse_columns_in_another_order():
    kmeans = _fitted("kmeans", named=True)
    swapped = Frame(X[:, ::-1], NAMES[::-1])
    with pytest.raises(ValueError, match=r"data's feature names .* differ .*another order"):
        kmeans.get_variances_and_weights_for_each_cluster(swapped)
    variances, weights = kmeans.get_variances_and_weights_for_each_cluster(Frame(X, NAMES))
    assert variances.shape == (2, 4) and weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["kmeans", "gmm"])
def test_initializing_again_takes_the_feature_names_of_its_data(kind):
    # before: the centroids/means came from the swapped columns, the names stayed those of fit,
    # and predict/log_likelihood silently read a frame of the fitted order as that order
    machine = _fitted(kind, named=True)
    swapped = Frame(X[:, ::-1], NAMES[::-1])
    _quietly(lambda: machine.initialize(swapped) if kind == "kmeans"
             else machine.initialize_gaussians(swapped))
    assert list(machine.feature_names_in_) == NAMES[::-1]
    infer = machine.predict if kind == "kmeans" else machine.log_likelihood
    with pytest.raises(ValueError, match=r"feature names .* differ .*another order"):
        infer(Frame(X, NAMES))
    assert np.shape(infer(swapped)) == (60,)


def test_a_gmm_fit_that_goes_on_from_its_parameters_checks_the_feature_names():
    # before: the second fit went on from means of (f0..f3) with the columns reversed
    gmm = _fitted("gmm", named=True)
    means = gmm.means.copy()
    with pytest.raises(ValueError, match=r"X's feature names .* differ .*another order"):
        gmm.fit(Frame(X[:, ::-1], NAMES[::-1]))
    assert np.array_equal(gmm.means, means) and list(gmm.feature_names_in_) == NAMES
    with pytest.warns(UserWarning, match="X does not have valid feature names") as caught:
        _quietly_but_names(lambda: gmm.fit(X))
    assert caught[0].filename == __file__


def _quietly_but_names(fit):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Warning)
        warnings.filterwarnings("always", "X does not have valid feature names")
        return fit()


@pytest.mark.parametrize("kind", ["kmeans", "plda", "calibration"])
def test_a_fit_that_fails_leaves_the_feature_names_of_the_model(kind):
    # before: the names of the refused data were recorded first, so the old model then read
    # frames of those (reordered) columns without a word
    machine = _fitted(kind, named=True)
    fitted_names = list(machine.feature_names_in_)
    values = SCORES if kind == "calibration" else X
    reordered = np.where(np.arange(len(values))[:, None] == 3, np.nan, values[:, ::-1])
    bad = Frame(reordered, fitted_names[::-1])  # (a NaN in row 3)
    fit = {"kmeans": lambda: machine.fit(bad), "plda": lambda: machine.fit(bad, Y),
           "calibration": lambda: machine.fit(bad, Y % 2)}[kind]
    with pytest.raises(ValueError, match="NaN"):
        _quietly(fit)
    assert list(machine.feature_names_in_) == fitted_names
    read = machine.log_likelihood if kind == "plda" else machine.transform
    with pytest.raises(ValueError, match="another order"):
        read(*[Frame(values[:, ::-1], fitted_names[::-1])] + ([Y] if kind == "plda" else []))


def test_a_gmm_fit_that_fails_leaves_the_feature_names_of_the_model():
    gmm = _fitted("gmm", named=True)
    with pytest.raises(ValueError, match="NaN"), pytest.warns(UserWarning, match="valid feature names"):
        gmm.fit(np.where(np.arange(60)[:, None] == 3, np.nan, X))  # (before: the names were dropped)
    assert list(gmm.feature_names_in_) == NAMES
