"""LinearCalibration.fit at evaluation sizes: its traced peak, and the same fit as the dense
route it replaced (a (n, k + 1) design matrix with a column of ones and per-trial weight and
sign vectors)."""

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy.special import expit

from emkit.calibration import LinearCalibration


def dense_fit(X, y, prior=0.5, C=1e6, max_iter=1000):
    """``(coef, intercept, n_iter)`` by the route fit took before: the same Newton iteration, on
    the trials in file order, with the intercept as a column of ones."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    n, k = X.shape
    n_tar = int(y.sum())
    weight = np.where(y, prior * n / n_tar, (1.0 - prior) * n / (n - n_tar))
    exponent = np.frexp(np.abs(X).max(axis=0))[1]
    Xs = np.ldexp(X, -exponent)
    loc, scale = Xs.mean(axis=0), Xs.std(axis=0)
    scale[scale == 0] = 1.0
    A = np.column_stack([(Xs - loc) / scale, np.ones(n)])
    reg = np.r_[np.full(k, 1.0 / (C * n)), 0.0]
    sign, w = np.where(y, -1.0, 1.0), weight / n

    def objective(theta):
        return w @ np.logaddexp(0.0, sign * (A @ theta)) + 0.5 * reg @ theta ** 2

    theta, f = np.zeros(k + 1), objective(np.zeros(k + 1))
    for it in range(1, max_iter + 1):
        p = expit(sign * (A @ theta))
        grad = A.T @ (w * sign * p) + reg * theta
        hess = (A.T * (w * p * expit(-sign * (A @ theta)))) @ A + np.diag(reg)
        step = -np.linalg.solve(hess, grad)
        decrement, t = -grad @ step, 1.0
        for _ in range(60):
            new = objective(theta + t * step)
            if new - f <= -1e-4 * t * decrement + 4 * np.finfo(float).eps * abs(f):
                break
            t /= 2
        theta, f = theta + t * step, new
        if decrement <= 1e-15 * f:
            break
    slopes = theta[:-1] / scale
    intercept = theta[-1] - slopes @ loc - np.log(prior / (1.0 - prior))
    return np.ldexp(slopes, -exponent), intercept, it


def random_case(rng, n, k):
    y = rng.random(n) < rng.uniform(0.05, 0.6)
    y[:2] = True, False
    X = rng.normal(size=(n, k)) * rng.uniform(0.1, 100, size=k) + 10 * rng.normal(size=k)
    X[y] += rng.uniform(0, 3, size=k)
    return X, y


@pytest.mark.parametrize("seed", range(12))
def test_fit_is_the_dense_route_fit(seed):
    # the targets are taken first and each class's weight applied to its slice: sums run in
    # another order, so the coefficients agree to rounding (measured: 6e-12 relative at worst,
    # on an intercept of 4e-5 left by cancellation; 2e-16 on 10^6 scores), not bit for bit
    rng = np.random.default_rng(seed)
    X, y = random_case(rng, int(rng.integers(10, 3000)), int(rng.integers(1, 4)))
    X = X * (1e300 if seed % 4 == 0 else 1.0)  # (scores near float64's top)
    X = np.round(X) if seed % 3 == 0 else X  # (ties)
    X = X[:, 0] if X.shape[1] == 1 and seed % 2 else X
    prior, C = float(rng.uniform(0.01, 0.9)), float(10 ** rng.uniform(-2, 7))
    given = X.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (separated draws warn, on both routes)
        fitted = LinearCalibration(prior=prior, C=C).fit(X, y)
    np.testing.assert_array_equal(X, given)  # (Z is filled from X, never X scaled in place)
    coef, intercept, n_iter = dense_fit(X, y, prior, C)
    np.testing.assert_allclose(fitted.coef_, coef, rtol=1e-10)
    assert fitted.intercept_ == pytest.approx(intercept, rel=1e-10, abs=1e-12 * abs(coef).max())
    assert fitted.n_iter_ == n_iter


def test_separated_scores_fit_as_before_and_warn():
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(size=300) - 5, rng.normal(size=200) + 5]
    y = np.r_[np.zeros(300, bool), np.ones(200, bool)][::-1].copy()
    with pytest.warns(UserWarning, match="perfectly separated"):
        fitted = LinearCalibration().fit(X[::-1], y)
    coef, intercept, n_iter = dense_fit(X[::-1], y)
    np.testing.assert_allclose(fitted.coef_, coef, rtol=1e-10)
    assert fitted.intercept_ == pytest.approx(intercept, rel=1e-10)
    assert fitted.n_iter_ == n_iter


@pytest.mark.parametrize("n_systems, copies", [(1, 6), (3, 4)])
def test_fit_peak_is_a_few_copies_of_the_scores(n_systems, copies):
    # the dense route peaked at 14.0 (one system) and 7.4 (three) times the scores' size: a
    # column of ones, weight and sign vectors and a dozen per-iteration temporaries; now the
    # standardised scores and three per-trial buffers (4.0 and 2.0 times measured)
    rng = np.random.default_rng(2)
    n = 200_000
    y = rng.random(n) < 0.1
    X = rng.normal(size=(n, n_systems)) + 2.5 / n_systems * y[:, None]  # (not separated)
    X = X[:, 0].copy() if n_systems == 1 else X
    LinearCalibration().fit(X[:100], y[:100])  # (imports outside the count)
    tracemalloc.start()
    try:
        LinearCalibration().fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < copies * X.nbytes, peak / X.nbytes
