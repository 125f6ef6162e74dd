"""Parameters assigned by hand after a fit on a DataFrame: assigned with another number of
features, the machine reads that many, so ``n_features_in_`` becomes it and the names of fit's
features are dropped (as after a fit on an array).  Before, ``feature_names_in_`` and
``n_features_in_`` stayed those of fit: arrays of the new dimension warned that names were
missing, DataFrames of it were refused, Whitening/WCCN/PLDA refused the new dimension, and
GMMMachine/KMeansMachine could not be saved."""

import warnings

import numpy as np
import pytest
from data_frames import Frame

from emkit import PLDA, WCCN, GMMMachine, KMeansMachine, Whitening
from emkit.lda import LDA

NAMES = ["f0", "f1", "f2", "f3"]
RNG = np.random.default_rng(0)
Y = np.repeat(np.arange(6), 10)
X = RNG.normal(size=(6, 4))[Y] * 3.0 + RNG.normal(size=(60, 4))
X3 = X[:, :3]


def _fitted(kind):
    data = Frame(X, NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (few EM steps: convergence warnings)
        return {"gmm": lambda: GMMMachine(2, max_fitting_steps=2).fit(data),
                "kmeans": lambda: KMeansMachine(2, max_iter=2).fit(data),
                "whitening": lambda: Whitening().fit(data),
                "wccn": lambda: WCCN().fit(data, Y),
                "lda": lambda: LDA(2).fit(data, Y),
                "plda": lambda: PLDA(max_iterations=2).fit(data, Y)}[kind]()


def _assign(kind, machine, D):
    """Parameters of ``D`` features, assigned one at a time as a user would."""
    values = {"gmm": {"means": np.zeros((2, D)), "variances": np.ones((2, D))},
              "kmeans": {"means": np.arange(2.0 * D).reshape(2, D)},
              "whitening": {"weights": np.eye(D), "input_subtract": np.zeros(D)},
              "wccn": {"weights": np.eye(D)},
              "lda": {"weights": np.ones((D, 2)), "input_subtract": np.zeros(D)},
              "plda": {"mean_": np.zeros(D), "F_": np.eye(D), "sigma_": np.eye(D)}}[kind]
    for name, value in values.items():
        setattr(machine, name, value)


READ = {"gmm": lambda m, x: m.log_likelihood(x),
        "kmeans": lambda m, x: m.predict(x),
        "whitening": lambda m, x: m.transform(x),
        "wccn": lambda m, x: m.transform(x),
        "lda": lambda m, x: m.transform(x),
        "plda": lambda m, x: m.log_likelihood_ratio(x, x)}
KINDS = list(READ)


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_of_another_dimension_drop_the_names_of_fit(kind):
    machine = _fitted(kind)
    _assign(kind, machine, 3)
    assert machine.n_features_in_ == 3 and not hasattr(machine, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "X does not have valid feature names")
        out = READ[kind](machine, X3)
    assert np.shape(out)[0] == 60 and np.all(np.isfinite(out))
    with pytest.warns(UserWarning, match="has feature names, but"):  # as after a fit on arrays
        READ[kind](machine, Frame(X3, ["a", "b", "c"]))


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_of_the_same_dimension_keep_the_names_of_fit(kind):
    machine = _fitted(kind)
    _assign(kind, machine, 4)
    assert machine.n_features_in_ == 4 and list(machine.feature_names_in_) == NAMES
    with pytest.raises(ValueError, match="another order"):
        READ[kind](machine, Frame(X[:, ::-1], NAMES[::-1]))


@pytest.mark.parametrize("kind", ["gmm", "kmeans"])
def test_a_machine_with_parameters_of_another_dimension_can_be_saved(kind, tmp_path):
    # before: "not saved, nothing was written: ... '/feature_names' must have shape (3,)"
    machine = _fitted(kind)
    _assign(kind, machine, 3)
    machine.save(tmp_path / "m.h5")
    loaded = type(machine).from_hdf5(tmp_path / "m.h5")
    assert loaded.n_features_in_ == 3 and not hasattr(loaded, "feature_names_in_")
    np.testing.assert_array_equal(loaded.means, machine.means)


@pytest.mark.parametrize("kind", ["whitening", "wccn", "lda"])
def test_the_output_names_follow_the_assigned_weights(kind):
    machine = _fitted(kind)
    _assign(kind, machine, 3)
    assert len(machine.get_feature_names_out()) == machine.transform(X3).shape[1]
    machine.weights = np.ones((3, 1)) if kind == "lda" else np.eye(3)
    assert len(machine.get_feature_names_out()) == machine.transform(X3).shape[1]


def test_initializing_on_another_dimension_takes_its_dimension():
    gmm, kmeans = _fitted("gmm"), _fitted("kmeans")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm.initialize_gaussians(Frame(X3, ["a", "b", "c"]))
        kmeans.initialize(X3)
    assert gmm.n_features_in_ == 3 and list(gmm.feature_names_in_) == ["a", "b", "c"]
    assert kmeans.n_features_in_ == 3 and not hasattr(kmeans, "feature_names_in_")


def test_a_fresh_machine_given_parameters_reads_their_dimension():
    # before: Whitening and PLDA failed with AttributeError: no attribute 'n_features_in_'
    white, plda = Whitening(), PLDA()
    _assign("whitening", white, 3)
    _assign("plda", plda, 3)
    np.testing.assert_array_equal(white.transform(X3), X3)
    assert plda.n_features_in_ == 3 and plda.log_likelihood_ratio(X3[:2], X3).shape == (2, 60)


def test_a_calibration_given_weights_of_other_systems_drops_the_names_of_fit():
    from emkit.calibration import LinearCalibration

    labels = np.arange(60) % 2 == 0
    calibration = LinearCalibration().fit(Frame(X[:, :2], ["sys1", "sys2"]), labels)
    calibration.coef_ = [1.0, 1.0, 1.0]  # before: kept n_features_in_ = 2 and the names
    assert calibration.n_features_in_ == 3 and not hasattr(calibration, "feature_names_in_")
    np.testing.assert_allclose(calibration.transform(X3), X3.sum(axis=1) + calibration.intercept_)
    calibration.coef_ = [2.0, 1.0, 1.0]  # the same systems, new weights: nothing else changes
    assert calibration.n_features_in_ == 3
