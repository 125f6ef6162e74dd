"""Error messages describe an array they were given (type, shape, dtype) instead of printing it:
an array's repr ran to many lines (all of a 1000-element weights vector) and its elements rarely
say what was wrong.  Short scalars are still shown as they are."""

import re

import dask.array as da
import numpy as np
import pytest

from emkit import PLDA, GMMMachine, IVectorMachine, KMeansMachine, set_config
from emkit._describe import describe


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).normal(size=(40, 3))


@pytest.mark.parametrize("value, shown", [
    (None, "None"), (3, "3"), (True, "True"), (2.5, "2.5"), (np.float64(0.5), "np.float64(0.5)"),
    (np.array(2), "array(2)"), ("k-means", "'k-means'"), ([1, 2], "[1, 2]"),
    (np.array([["a"] * 3] * 2), "an array of shape (2, 3) and dtype <U1"),
    (np.zeros(1000), "an array of shape (1000,) and dtype float64"),
    (da.zeros((4, 3), chunks=2), "a dask Array of shape (4, 3) and dtype float64"),
    ("x" * 100, "'" + "x" * 36 + "... (100 characters)"),
    (list(range(100)), "a list of 100 items"), (set(range(50)), "a set of 50 items"),
])
def test_describe(value, shown):
    assert describe(value) == shown


def test_a_text_init_method_is_described_not_printed(frames):
    # was "... got array([['a', 'a', 'a'],\n       ['a', 'a', 'a']], dtype='<U1')"
    with pytest.raises(TypeError) as info:
        KMeansMachine(2, init_method=np.array([["a"] * 3] * 2)).fit(frames)
    assert str(info.value) == ("init_method must be a method name or an array of numbers; got an "
                               "array of shape (2, 3) and dtype <U1")


def test_a_long_init_method_name_is_cut(frames):
    with pytest.raises(ValueError, match=re.escape("got 'kmeans" + "+" * 30 + "... (1006 "
                                                   "characters)")) as info:
        KMeansMachine(2, init_method="kmeans" + "+" * 1000).fit(frames)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("weights, got", [
    (np.ones(1000), "got shape (1000,)"),
    (np.array([0.5, -1.0, 0.5]), "got -1.0 at index 1"),
    ([1.0, np.nan, 1.0], "got nan at index 1"),
])
def test_gmm_weights_say_what_is_wrong(frames, weights, got):
    # a 1000-element weights vector was printed in full
    with pytest.raises(ValueError) as info:
        GMMMachine(3, weights=weights).fit(frames)
    assert str(info.value) == f"weights must be 3 finite non-negative values; {got}"


@pytest.mark.parametrize("alpha, got", [(np.linspace(0, 1, 100), "got shape (100,)"),
                                        (np.array([0.5, 2.0, 0.1]), "got 2.0 at index 1")])
def test_map_alpha_says_what_is_wrong(frames, alpha, got):
    ubm = GMMMachine(3, max_fitting_steps=2, random_state=0).fit(frames)
    with pytest.raises(ValueError) as info:
        GMMMachine(3, trainer="map", ubm=ubm, map_alpha=alpha).fit(frames)
    assert str(info.value) == ("map_alpha must be a number in [0, 1] or an array of 3 such "
                               f"numbers (n_gaussians); {got}")


@pytest.mark.parametrize("fit, message", [
    (lambda X, ubm: PLDA(convergence_threshold=np.ones(100)).fit(X, [0, 1] * 20),
     "convergence_threshold must be a finite number >= 0 or None; got an array of shape (100,) "
     "and dtype float64"),
    (lambda X, ubm: IVectorMachine(ubm, variance_floor=np.ones(100)).fit([ubm.acc_stats(X)]),
     "variance_floor must be a finite number >= 0; got an array of shape (100,) and dtype float64"),
    (lambda X, ubm: KMeansMachine(2, max_iter=np.arange(50)).fit(X),
     "max_iter must be an integer >= 0; got ndarray: an array of shape (50,) and dtype "
     "int64"),
    (lambda X, ubm: set_config(block_rows=np.arange(50)),
     "block_rows must be a positive integer; got ndarray: an array of shape (50,) and dtype int64"),
], ids=["plda", "ivector", "kmeans", "set_config"])
def test_array_parameters_are_described(frames, fit, message):
    ubm = GMMMachine(2, max_fitting_steps=2, random_state=0).fit(frames)
    with pytest.raises((TypeError, ValueError)) as info:
        fit(frames, ubm)
    assert str(info.value) == message


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="legacy='1.25' is numpy 2's; numpy 1 prints this way by itself")
@pytest.mark.parametrize("value, shown", [
    (np.float64(0.5), "np.float64(0.5)"), (np.float32(0.1), "np.float32(0.1)"),
    (np.int64(3), "np.int64(3)"), (np.True_, "np.True_"), (np.complex128(1 + 2j), "np.complex128(1+2j)"),
])
def test_a_numpy_scalar_is_shown_the_same_whatever_numpy_prints(value, shown):
    # numpy 1 (and numpy 2 with legacy printing) wrote "0.5", "True": the message changed with it
    with np.printoptions(legacy="1.25"):
        assert describe(value) == shown


def test_a_numpy_bool_setting_is_named_bool_whatever_numpy_calls_its_type():
    numpy_1_bool = type("bool_", (), {"__module__": "numpy"})  # numpy 1's np.True_ is a bool_
    with pytest.raises(TypeError, match=r"^block_rows must be a positive integer; got bool: "):
        set_config(block_rows=numpy_1_bool())
