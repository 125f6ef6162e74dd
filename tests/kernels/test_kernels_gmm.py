"""The matrix-product GMM kernels against a naive oracle (explicit loops / scipy)."""

import numpy as np
import pytest
from _parity import assert_parity
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emkit._kernels import gmm as kg


def _naive(X, means, variances, weights):
    C = len(weights)
    lwl = np.empty((len(X), C))
    for c in range(C):
        lwl[:, c] = np.log(weights[c]) + multivariate_normal(means[c], np.diag(variances[c])).logpdf(X)
    ll = logsumexp(lwl, axis=1)
    R = np.exp(lwl - ll[:, None])
    return lwl, ll, R


@pytest.mark.parametrize("N,D,C,block_rows", [(50, 3, 4, 7), (1, 1, 1, 16), (200, 5, 1, 64), (33, 1, 6, 5)])
def test_statistics_match_naive_loop(N, D, C, block_rows):
    rng = np.random.default_rng(N + D + C)
    X = rng.normal(size=(N, D)) * 3 + 10
    means = rng.normal(size=(C, D)) * 3 + 10
    variances = rng.uniform(0.3, 4, size=(C, D))
    weights = rng.dirichlet(np.ones(C))
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights))
    lwl, ll, R = _naive(X, means, variances, weights)
    np.testing.assert_allclose(kg.log_weighted_likelihood(X, coef, block_rows), lwl, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(kg.log_likelihood(X, coef, block_rows), ll, rtol=1e-12, atol=1e-11)
    total, n, sum_px, sum_pxx = kg.accumulate_statistics(X, coef, block_rows)
    np.testing.assert_allclose(total, ll.sum(), rtol=1e-12)
    assert_parity(n, R.sum(0), tol=1e-11)
    np.testing.assert_allclose(sum_px, R.T @ X, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(sum_pxx, R.T @ X**2, rtol=1e-11, atol=1e-9)


def test_float32_compute_is_close_and_returns_float64():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4))
    means, variances, weights = rng.normal(size=(3, 4)), rng.uniform(0.5, 2, size=(3, 4)), np.ones(3) / 3
    c64 = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights))
    c32 = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights), dtype=np.float32)
    r64, r32 = kg.accumulate_statistics(X, c64), kg.accumulate_statistics(X, c32)
    for a, b in zip(r32[1:], r64[1:]):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
