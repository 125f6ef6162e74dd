"""Frames given as object arrays, or as lists that make one: what is not a number is named with
its index.  Before, scikit-learn's conversion read None as NaN ("Input X contains NaN": the user
passed no NaN), a string as numpy's "could not convert string to float", and a list holding
None passed through as an object array (then "the covariance of X overflows float64", or
numpy's "unsupported operand type(s)")."""

import re
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from emkit import PLDA, WCCN, GMMMachine, KMeansMachine, Whitening
from emkit.calibration import LinearCalibration
from emkit.lda import LDA

Y = [0, 0, 1, 1, 2, 2]
ROWS = [[1.0, 1.0], [2.0, 3.0], [1.0, 5.0], [4.0, 1.0], [0.5, 2.0], [3.0, 2.5]]
FITTED = np.array(ROWS) + np.arange(6)[:, None]


def _quietly(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (convergence warnings of tiny fits)
        return call()


CALLS = {
    "kmeans fit": lambda X: KMeansMachine(2).fit(X),
    "kmeans predict": lambda X: _quietly(lambda: KMeansMachine(2).fit(FITTED)).predict(X),
    "gmm fit": lambda X: GMMMachine(2).fit(X),
    "gmm log_likelihood": lambda X: _quietly(lambda: GMMMachine(2).fit(FITTED)).log_likelihood(X),
    "whitening fit": lambda X: Whitening().fit(X),
    "whitening transform": lambda X: Whitening().fit(FITTED).transform(X),
    "wccn fit": lambda X: WCCN().fit(X, Y),
    "lda fit": lambda X: LDA(1).fit(X, Y),
    "plda fit": lambda X: PLDA().fit(X, Y),
    "calibration fit": lambda X: LinearCalibration().fit(X, [0, 1, 0, 1, 0, 1]),
}


def _with(value, row=1, column=1, kind=np.ndarray):
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    return np.array(rows, dtype=object) if kind is np.ndarray else rows


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("X, error, shown", [
    (_with(None, 0, 0), TypeError, "an object array holding None at [0, 0]"),
    (_with("a"), ValueError, "an object array holding 'a' at [1, 1]"),
    (_with(None, 4, 1, kind=list), TypeError, "a list holding None at [4, 1]"),
    (_with(1 + 2j, 2, 0), TypeError, "an object array holding (1+2j) at [2, 0]"),
    (_with({"foo": "bar"}), TypeError, "an object array holding {'foo': 'bar'} at [1, 1]"),
], ids=["None", "str", "list None", "complex", "dict"])
def test_what_is_not_a_number_is_named(call, X, error, shown):
    name = {"calibration fit": "scores", "gmm log_likelihood": "data"}.get(call, "X")
    with pytest.raises(error, match=re.escape(f"{name} must hold numbers; got {shown} (each "
                                              "element is converted with float(), whose argument "
                                              "must be a real number or a string of a number)")):
        CALLS[call](X)


@pytest.mark.parametrize("call", ["kmeans predict", "gmm log_likelihood", "whitening transform"])
def test_object_arrays_of_numbers_give_the_numbers_results(call):
    as_floats = CALLS[call](np.array(ROWS))
    objects = np.array(ROWS, dtype=object)
    objects[0, 0], objects[1, 1], objects[2, 0] = Fraction(1), Decimal("3"), 1  # (the same values)
    objects[3, 1] = " 1.0"  # (a string of a number: float() and scikit-learn take it)
    np.testing.assert_array_equal(CALLS[call](objects), as_floats)
    np.testing.assert_array_equal(CALLS[call]([list(r) for r in ROWS]), as_floats)


def test_a_nan_in_an_object_array_is_still_a_nan():
    X = _with(float("nan"))
    with pytest.raises(ValueError, match=re.escape("Input X contains NaN")):
        KMeansMachine(2).fit(X)


def _dask(X, chunks=(2, 2)):
    import dask.array as da

    return da.from_array(X, chunks=chunks)


def _computed(result):
    return np.asarray(result) if hasattr(result, "__dask_graph__") else result  # (lazy results)


@pytest.mark.parametrize("call", CALLS)
def test_a_dask_array_of_objects_names_what_is_not_a_number(call):
    # before: astype read None as NaN, so "Input X contains NaN" (a NaN never given) or, where
    # the dask values were not checked, "the covariance of X overflows float64"; calibration
    # (computed whole) said "got a Array holding None"
    X = _dask(_with(None, 4, 1))
    if call == "calibration fit":
        where = "scores must hold numbers; got a dask array of dtype object holding None at [4, 1] ("
    else:
        name = "data" if call == "gmm log_likelihood" else "X"
        where = (f"{name} must hold numbers; got a dask array of dtype object holding None at "
                 f"[4, 1], the first in its dask chunk {name}[4:6, 0:2] (chunks are converted one "
                 "by one: another may hold an earlier one) (")
    with pytest.raises(TypeError, match=re.escape(where + "each element is converted with float()")):
        _computed(CALLS[call](X))


def test_a_dask_array_of_objects_of_unknown_chunk_sizes_names_the_index_in_its_chunk():
    import dask.array as da

    X = _dask(_with("a", 4, 1), chunks=(2, 1))
    X = X[da.from_array(np.ones(6, dtype=bool), chunks=2)]  # (row chunk sizes now unknown)
    with pytest.raises(ValueError, match=re.escape("got a dask array of dtype object holding 'a' "
                                                   "at [0, 0] of one of its dask chunks (each")):
        CALLS["whitening transform"](X)


def test_a_dask_array_of_numbers_as_objects_is_computed_once():
    # a guard (the old astype computed it once too): the check is no pass of its own
    import dask
    import dask.array as da

    computed = []

    def rows():
        computed.append(1)
        return np.array(ROWS, dtype=object)

    X = da.from_delayed(dask.delayed(rows)(), shape=(6, 2), dtype=object)
    white = Whitening().fit(X)
    assert computed == [1]
    np.testing.assert_array_equal(white.weights, Whitening().fit(np.array(ROWS)).weights)
