"""Parameters assigned by the user (code ported from bob.learn.em sets ``machine.U = ...``,
``kmeans.means = ...``): NaN or infinity is refused when assigned, naming the attribute, and the
previous value stays. The reference stored them, and every transform, score or projection that
followed was NaN without a word. (GMMMachine's own checks: tests/gmm/test_gmm_api_misuse.py.)"""

import re

import numpy as np
import pytest

from emkit import (PLDA, WCCN, GMMMachine, IVectorMachine, ISVMachine, JFAMachine, KMeansMachine,
                   Whitening)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.repeat([0, 1, 2], 20)
    ubm = GMMMachine(2, max_fitting_steps=3).fit(X)
    stats = [ubm.acc_stats(X[i * 10:(i + 1) * 10]) for i in range(6)]
    sessions = [0, 0, 1, 1, 2, 2]
    return {
        "kmeans": KMeansMachine(2, max_iter=3).fit(X),
        "isv": ISVMachine(1, ubm=ubm, em_iterations=1).fit(stats, sessions),
        "jfa": JFAMachine(1, 1, ubm=ubm, em_iterations=1).fit(stats, sessions),
        "ivector": IVectorMachine(ubm, 2, max_iterations=1, random_state=0).fit(stats),
        "wccn": WCCN().fit(X, y),
        "whitening": Whitening().fit(X),
        "plda": PLDA(dim_f=1, dim_g=1, max_iterations=1).fit(X, y),
    }


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
