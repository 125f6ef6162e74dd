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
