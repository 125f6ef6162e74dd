"""Numerical edges of WCCN, Whitening and LDA beyond test_whitening.py/test_lda.py: data whose
spread is too small to square in float64, fewer samples than dimensions, duplicated samples.
Each test states the expected behaviour: the numbers of the same data in a better unit, or an
error naming X and the cause."""

import numpy as np
import pytest
from _parity import assert_parity

from emkit.lda import LDA
from emkit.plda import PLDA
from emkit.wccn import WCCN
from emkit.whitening import SingularError, Whitening

MAKERS = {"Whitening": lambda: Whitening(), "Whitening(pinv)": lambda: Whitening(pinv=True),
          "WCCN": lambda: WCCN(), "LDA": lambda: LDA(2),
          "PLDA": lambda: PLDA(max_iterations=3, convergence_threshold=None)}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(60) % 4
    return rng.normal(size=(60, 3)) @ rng.normal(size=(3, 3)) + 2.0 * y[:, None], y


def _outputs(model, X, y):
    model.fit(X, y)
    if isinstance(model, PLDA):
        return model.log_likelihood_ratio(X[:4], X[4:10])
    return model.transform(X)


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("unit", [1e-160, 1e-200])
def test_data_too_small_to_square_is_refused_naming_x(name, unit):
    """Before, at 1e-160: a silent error of 2e-4 (Whitening), 7e-3 (WCCN), 6e-2 (LDA), 2e-3 (PLDA)
    relative to the result; at 1e-200 the covariance was 0, called singular (or, by PLDA,
    'X is constant').  bob.learn.em 3.3.1 has no numbers there either (scipy's 'array must not
    contain infs or NaNs' from 1e-155 on)."""
    X, y = _data()
    owner = name.split("(")[0]
    with pytest.raises(ValueError, match=rf"^X varies by at most \S+ within a feature: too little "
                                         rf"to square in float64 .*, so {owner} cannot estimate it; "
                                         rf"rescale X$"):
        MAKERS[name]().fit(X * unit, y)


@pytest.mark.parametrize("name", ["WCCN", "LDA"])
def test_data_too_small_to_square_within_classes_only_are_refused(name):
    """Within-class noise of 1e-160 around class means 1e-146 apart: the total spread could be
    squared, but the within-class scatter LDA and WCCN invert could not; before, they fitted
    silently (transforms off by about 5e-3)."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 4
    X = rng.normal(size=(60, 3)) * 1e-160 + rng.normal(size=(4, 3))[y] * 1e-146
    with pytest.raises(ValueError, match=rf"^X varies by at most \S+ within a class: too little "
                                         rf"to square in float64 .*, so {name} cannot estimate it"):
        MAKERS[name]().fit(X, y)

@pytest.mark.parametrize("name", sorted(MAKERS))
def test_small_but_squarable_data_give_the_numbers_of_the_unit_data(name):
    """(guard) data at 1e-150 (a spread of about 1e-149) still train: their whitened, normalised or
    projected data and PLDA scores are those of the same data in unit scale, to 1e-10."""
    X, y = _data()
    expected = _outputs(MAKERS[name](), X, y)
    unit = 1e-150
    assert_parity(_outputs(MAKERS[name](), X * unit, y), expected, tol=1e-10)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_constant_data_keep_their_own_error(name):
    """(guard) all-equal samples are not 'too small to square': each estimator names them as
    before (singular covariance, or PLDA's 'X is constant')."""
    X = np.ones((12, 3))
    y = np.arange(12) % 3
    with pytest.raises(ValueError) as info:
        MAKERS[name]().fit(X, y)
    assert "too little to square" not in str(info.value)


@pytest.mark.parametrize("pinv", [False, True])
def test_whitening_with_fewer_samples_than_dimensions_is_refused(pinv):
    """(guard) 3 samples of 5 dimensions: a covariance of rank 2, refused as singular (the
    pseudo-inverse is not positive definite either), never a NaN matrix."""
    X = np.random.default_rng(1).normal(size=(3, 5))
    with pytest.raises(SingularError, match="covariance of X"):
        Whitening(pinv=pinv).fit(X)


def test_wccn_with_fewer_samples_than_dimensions_names_the_ranks():
    """(guard) 3 samples in 2 classes give a within-class covariance of rank 1 < 5."""
    X = np.random.default_rng(1).normal(size=(3, 5))
    with pytest.raises(SingularError, match=r"^y: 3 samples in 2 classes give a within-class "
                                            r"covariance of rank at most 1 < n_features = 5"):
        WCCN().fit(X, [0, 0, 1])


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_data_too_large_to_square_are_named_under_warnings_as_errors(name):
    """pytest turns warnings into errors: before, numpy's overflow RuntimeWarning came first for
    Whitening, WCCN and LDA (test_whitening.py silences numpy's warnings to see the named error)."""
    X, y = _data()
    with pytest.raises(ValueError, match=r"^the [a-zA-Z -]+ overflows float64 \(X holds values too large "
                                         r"to square, above about 1e154 in magnitude\): rescale X$"):
        MAKERS[name]().fit(X * 1e200, y)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_data_spanning_the_whole_float64_range_are_named_as_too_large(name):
    """The spread check itself overflows on features from -1e308 to 1e308: that is left to the
    covariance's own check, not raised as numpy's RuntimeWarning."""
    X, y = _data()
    X = X / np.abs(X).max() * 1.7e308
    with pytest.raises(ValueError, match=r"^the [a-zA-Z -]+ overflows float64"):
        MAKERS[name]().fit(X, y)


def test_lda_refuses_a_non_finite_eigenproblem_by_name(monkeypatch):
    """No data found after the within-class check reach it, so the overflow of L^-1 S_b L^-T is
    simulated: before, numpy's 'invalid value' RuntimeWarning or 'Eigenvalues did not converge'."""
    import scipy.linalg

    solve, calls = scipy.linalg.solve_triangular, []

    def overflowing_second_solve(*args, **kwargs):
        calls.append(1)
        result = solve(*args, **kwargs)
        return result * np.inf if len(calls) == 2 else result

    monkeypatch.setattr(scipy.linalg, "solve_triangular", overflowing_second_solve)
    X, y = _data()
    with pytest.raises(SingularError, match="^X: the between-class scatter relative to the "
                                            "within-class scatter overflows float64"):
        LDA(2).fit(X, y)
