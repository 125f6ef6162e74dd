"""Parameters assigned by the user (code ported from bob.learn.em sets ``machine.U = ...``,
``kmeans.means = ...``): NaN or infinity is refused when assigned, naming the attribute, and the
previous value stays. The reference stored them, and every transform, score or projection that
followed was NaN without a word. (GMMMachine's own checks: tests/gmm/test_gmm_api_misuse.py.)"""

import re

import numpy as np
import pytest

from sklearn.exceptions import NotFittedError

from emkit import WCCN, Whitening
from emkit.calibration import LinearCalibration
from fitted_estimators import small_fitted_estimators


@pytest.fixture(scope="module")
def fitted():
    return small_fitted_estimators()


CASES = [
    ("kmeans", "centroids_", "KMeansMachine.centroids_"),
    ("kmeans", "means", "KMeansMachine.centroids_"),
    ("isv", "U", "ISVMachine.U"),
    ("isv", "D", "ISVMachine.D"),
    ("jfa", "V", "JFAMachine.V"),
    ("ivector", "T", "IVectorMachine.T"),
    ("ivector", "sigma", "IVectorMachine.sigma"),
    ("wccn", "weights", "WCCN.weights"),
    ("whitening", "input_subtract", "Whitening.input_subtract"),
    ("plda", "F_", "PLDA.F_"),
    ("calibration", "coef_", "LinearCalibration.coef_"),
]


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "infinity")])
@pytest.mark.parametrize("key, attribute, label", CASES)
def test_a_non_finite_assignment_is_refused_and_the_value_stays(fitted, key, attribute, label, bad, kind):
    machine = fitted[key]
    before = np.array(getattr(machine, attribute))
    value = before.copy()
    value.flat[1] = bad
    index = tuple(int(i) for i in np.unravel_index(1, value.shape))
    with pytest.raises(ValueError, match=rf"{label} contains {kind} \(first at index {re.escape(str(index))}\)"):
        setattr(machine, attribute, value)
    np.testing.assert_array_equal(getattr(machine, attribute), before)


@pytest.mark.parametrize("key, attribute, label", CASES)
def test_a_finite_assignment_is_stored_as_a_read_only_copy(fitted, key, attribute, label):
    machine = fitted[key]
    before = np.array(getattr(machine, attribute))
    value = before + 0.5
    setattr(machine, attribute, value)
    try:
        stored = getattr(machine, attribute)
        np.testing.assert_array_equal(stored, before + 0.5)
        assert stored is not value and not stored.flags.writeable
        value[...] = 0.0  # the caller's array stays theirs
        np.testing.assert_array_equal(getattr(machine, attribute), before + 0.5)
    finally:
        setattr(machine, attribute, before)


def test_complex_values_are_refused_naming_the_attribute(fitted):
    with pytest.raises(TypeError, match=r"ISVMachine\.U must hold real numbers"):
        fitted["isv"].U = fitted["isv"].U + 1j


def test_a_wccn_given_weights_by_hand_transforms_and_saves(tmp_path):
    # before: transform raised AttributeError 'WCCN' object has no attribute 'input_subtract'
    # (fit stores 0 and 1.0, which a WCCN never estimates, so they are its defaults)
    import emkit.io

    W = np.tril(np.arange(1.0, 10.0).reshape(3, 3))
    X = np.random.default_rng(1).standard_normal((5, 3))
    wccn = WCCN()
    wccn.weights = W
    np.testing.assert_array_equal(wccn.transform(X), X @ W)
    assert (wccn.input_subtract, wccn.input_divide, wccn.n_features_in_) == (0.0, 1.0, 3)
    emkit.io.save(wccn, tmp_path / "wccn.h5")
    np.testing.assert_array_equal(emkit.io.load(tmp_path / "wccn.h5").transform(X), X @ W)


def test_a_calibration_given_coef_by_hand_reads_as_many_systems(tmp_path):
    # before: n_features_in_ stayed that of fit, so (N, 3) scores were refused ('must have 2
    # column(s)') and a one-system calibration given 2 weights was saved with both
    from emkit.evaluation.calibration_io import save_calibration

    rng = np.random.default_rng(2)
    scores, labels = rng.standard_normal((40, 2)), np.arange(40) % 2 == 0
    fused = LinearCalibration().fit(scores, labels)
    fused.coef_ = [1.0, 2.0, 3.0]
    assert fused.n_features_in_ == 3
    np.testing.assert_array_equal(fused.transform(np.ones((2, 3))), 6.0 + fused.intercept_)
    single = LinearCalibration().fit(scores[:, 0], labels)
    single.coef_ = [1.0, 2.0]
    with pytest.raises(ValueError, match="only one-system calibrations can be saved; got 2 systems"):
        save_calibration(single, tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_a_calibration_given_parameters_by_hand_names_what_is_missing_or_wrong():
    calibration = LinearCalibration()
    calibration.coef_ = [2.0]
    with pytest.raises(NotFittedError, match="LinearCalibration has coef_ but no intercept_"):
        calibration.transform([1.0])
    calibration.intercept_ = 1.0
    np.testing.assert_array_equal(calibration.transform([1.0, 2.0]), [3.0, 5.0])
    calibration.coef_ = 2.0
    with pytest.raises(ValueError, match=r"LinearCalibration\.coef_ must be 1-D, one weight per "
                                         r"system; got shape \(\)"):
        calibration.transform([1.0])


BAD_PROJECTION_VALUES = [
    ("input_divide", 0, ValueError, "input_divide must hold finite non-zero numbers; got 0"),
    ("input_divide", np.inf, ValueError, "input_divide must hold finite non-zero numbers; got inf"),
    ("input_divide", np.array([1.0, 0.0, 2.0]), ValueError, "input_divide must hold finite "
     "non-zero numbers; got an array of shape (3,) and dtype float64 (0.0 at index 1)"),
    ("input_subtract", "a", TypeError, "input_subtract must hold finite numbers; got str: 'a'"),
]


# (Whitening.input_subtract is a checked fitted array: text is refused when assigned)
@pytest.mark.parametrize("kind, attribute, value, error, shown",
                         [("WCCN",) + case for case in BAD_PROJECTION_VALUES]
                         + [("Whitening",) + case for case in BAD_PROJECTION_VALUES[:3]])
def test_assigned_input_subtract_and_divide_are_checked_where_they_are_used(kind, attribute, value,
                                                                            error, shown):
    # before: a 0 divisor gave numpy's divide-by-zero RuntimeWarning and 'transform overflows
    # float64', an infinite one zeros without a word, and text numpy's ufunc 'subtract' error
    machine = WCCN() if kind == "WCCN" else Whitening()
    machine.weights = np.eye(3)
    machine.input_subtract = np.zeros(3)
    setattr(machine, attribute, value)
    with pytest.raises(error, match=re.escape(f"{kind}.{shown}")):
        machine.transform(np.ones((2, 3)))


def test_a_calibration_pickled_before_coef_became_a_fitted_array_still_loads():
    import pickle

    fitted = LinearCalibration().fit([0.0, 1.0, 2.0, 3.0, 1.5, 0.5], [0, 0, 1, 1, 0, 1])
    state = dict(fitted.__getstate__())
    state["coef_"] = np.array(state.pop("_coef_"))  # (the layout of the earlier pickles)
    old = LinearCalibration.__new__(LinearCalibration)
    old.__dict__.update(state)
    loaded = pickle.loads(pickle.dumps(old))
    np.testing.assert_array_equal(loaded.transform([1.0, 2.0]), fitted.transform([1.0, 2.0]))
    assert not loaded.coef_.flags.writeable
