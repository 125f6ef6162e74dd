"""The matrix-product GMM kernels against a naive oracle (explicit loops / scipy)."""

import numpy as np
import pytest
from _float32_cases import tight_clusters, variance_error
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


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_float32_statistics_keep_the_variances_of_float64(offset):
    """Variances from the float32 statistics stay within 4e-8 (1 + kappa) relative of float64
    (measured: 1.3-2.2e-8 with the shift on its grid; 4.8-9.3e-8 when ``x - s`` was rounded to
    float32 about the mean of the means and whole blocks summed in float32; 1.4-2.9e-7 with
    ``x - s`` as two float32 numbers about that mean, frames offset by 100)."""
    worst = 0.0
    for seed in range(3):
        X, means, variances, weights = tight_clusters(seed)
        X, means = X + np.float32(offset), means + offset
        stats = [kg.accumulate_shifted_statistics(
            X, kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights), dtype=dtype), 4096)[1:]
            for dtype in (np.float32, np.float64)]
        worst = max(worst, variance_error(*stats, means, variances))
    assert worst < 4e-8


def test_float32_frames_minus_the_float32_shift_are_exact():
    """The float32 coefficients' shift is within 1/4096 of the scale from the mean of the means,
    on a grid on which ``x - s`` of float32 frames is exact in float32 where ``|x - s| <= |x|``;
    about the mean of the means itself most differences round."""
    rng = np.random.default_rng(5)
    means, variances = rng.normal(size=(9, 7)) * 30 + 7.3, rng.uniform(0.1, 4, size=(9, 7))
    X = (means[rng.integers(0, 9, 4000)] + rng.normal(size=(4000, 7)) * 2).astype(np.float32)
    mean = means.mean(axis=0)
    shift = kg.DiagGMMCoefficients.from_parameters(means, variances, np.zeros(9), np.float32).shift
    assert np.array_equal(kg.DiagGMMCoefficients.from_parameters(means, variances, np.zeros(9)).shift, mean)
    scale = np.max(np.abs(means) + 8 * np.sqrt(variances), axis=0)
    assert np.all(np.abs(shift - mean) <= scale / 4096) and not np.array_equal(shift, mean)
    held = np.abs(X - shift) <= np.abs(X)
    assert held.mean() > 0.5
    for s, exact in ((shift, True), (mean, False)):
        design = kg.fill_float32_design(X, s, np.empty((4000, 15), np.float32))
        differences = X.astype(np.float64) - s
        np.testing.assert_array_equal(design[:, :7], (differences**2).astype(np.float32))
        assert np.array_equal(design[:, 7:14][held], differences[held]) == exact
    assert np.mean(design[:, 7:14][held] != differences[held]) > 0.5


def _blobs_problem(seed=3, N=700, D=6, C=40, spread=6.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(C, D)) * spread
    X = means[rng.integers(0, C, N)] + rng.normal(size=(N, D))
    variances = rng.uniform(0.2, 1.5, size=(C, D))
    weights = rng.dirichlet(np.ones(C))
    return X, means, variances, weights


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_do_not_depend_on_block_rows_or_pass_slices(dtype, monkeypatch):
    """Blocks of 1 to 1000 rows and exp/log-sum-exp passes over slices of 1 to all rows of a block
    give the same statistics (float64: 1e-10 relative)."""
    X, means, variances, weights = _blobs_problem()
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights), dtype=dtype)
    ref = kg.accumulate_statistics(X, coef, 1000)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    ref_ll = kg.log_likelihood(X, coef, 1000)
    for rows, pass_bytes in [(1, kg.PASS_BYTES), (7, 1), (64, 3 * 40 * 8), (1000, 1), (256, 10**9)]:
        monkeypatch.setattr(kg, "PASS_BYTES", pass_bytes)
        got = kg.accumulate_statistics(X, coef, rows)
        np.testing.assert_allclose(got[0], ref[0], rtol=tol)
        for a, b in zip(got[1:], ref[1:]):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
        ll_tol = tol * np.abs(ref_ll) if dtype == np.float64 else _expanded_square_bound(X, coef)
        assert np.all(np.abs(kg.log_likelihood(X, coef, rows) - ref_ll) <= ll_tol)


def _expanded_square_bound(X, coef):
    """Twice a rigorous bound on the float32 rounding error of each row's log-likelihood: that of
    its largest expanded square, ``(2D+3) eps max_c sum_j |design_tj coef_jc|`` (the product's
    rounding plus its operands'): it depends on the BLAS kernel's order of summation, which
    differs between machines, but never beyond this."""
    design = kg.fill_design(X, coef.shift, np.empty((len(X), coef.coef.shape[0])))
    magnitude = np.max(np.abs(design) @ np.abs(coef.coef.astype(np.float64)), axis=1)
    return 2 * (design.shape[1] + 2) * np.finfo(np.float32).eps * magnitude


def test_default_block_rows_fit_the_cache_and_stay_in_range():
    l2 = kg._l2_bytes()
    assert l2 > 0
    assert kg.default_block_rows(2048) * 2048 * 8 <= max(4 * l2, 512 * 2048 * 8)
    assert 512 <= kg.default_block_rows(10**6) and kg.default_block_rows(1) <= 4096
    assert kg.default_block_rows(1024, 4) == min(4096, max(512, 4 * l2 // (1024 * 4)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("slow_exp", [True, False])
def test_responsibilities_below_the_floor_are_zero(dtype, slow_exp, monkeypatch):
    """exp(L - max) under RESPONSIBILITY_FLOOR is set to 0 (float32: the subnormal range, slow on
    many x86 cores; float64: exp(-100), a change of under 2e-19 relative in any M-step);
    everything at or above it is kept exactly, whether few or most entries of a slice are, and
    whether exp is slow here (then only the arguments above the floor are gathered) or
    not."""
    monkeypatch.setattr(kg, "slow_exp", lambda dtype: slow_exp)
    floor = kg.RESPONSIBILITY_FLOOR[np.dtype(dtype).itemsize]
    row = np.array([0.0, floor - 5.0, floor + 1.0, floor - 0.5, -1.0, -800.0, -1e4])
    expected = np.exp(np.array([0.0, -np.inf, floor + 1.0, -np.inf, -1.0, -np.inf, -np.inf]))
    for more in (-2.0, -1e3):  # most entries above the floor (all exponentiated) or below (sparse)
        L = np.hstack([row, np.full(20, more)])[None, :].astype(dtype) + dtype(3.0)
        mx, s = np.empty(1, dtype), np.empty(1, dtype)
        kg._log_normalise_rows(L, mx, s)
        assert mx[0] == dtype(3.0)
        full = np.hstack([expected, np.full(20, np.exp(more))])
        np.testing.assert_allclose(L[0], full, rtol=1e-6 if dtype == np.float32 else 1e-14)
        assert np.all(L[0, [1, 3, 5, 6]] == 0.0) and L[0, 2] > 0
        assert s[0] == pytest.approx(full.sum(), rel=1e-6)


def test_statistics_are_the_same_whether_far_arguments_are_skipped_or_not(monkeypatch):
    """Most responsibilities of well separated Gaussians are below exp(-100): the statistics are
    the same numbers whether their exponentials are skipped (slow float64 exp) or computed and
    zeroed, and within 1e-14 of the statistics without any floor."""
    X, means, variances, weights = _blobs_problem(spread=12.0)
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights))
    results = []
    for slow in (True, False):
        monkeypatch.setattr(kg, "slow_exp", lambda dtype: slow)
        results.append(kg.accumulate_statistics(X, coef, 256))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    lwl = kg.log_weighted_likelihood(X, coef)
    R = np.exp(lwl - logsumexp(lwl, axis=1)[:, None])
    assert np.mean(lwl - lwl.max(axis=1, keepdims=True) < -100) > 0.5
    assert_parity(results[0][1], R.sum(axis=0), tol=1e-14)
    assert_parity(results[0][2], R.T @ X, tol=1e-14)


def test_far_apart_gaussians_give_the_naive_statistics():
    """Frames whose log-likelihoods differ by hundreds between Gaussians (their smallest
    responsibilities far below the normal range) give the naive statistics to 1e-10."""
    X, means, variances, weights = _blobs_problem(seed=5, N=300, D=4, C=12, spread=30.0)
    coef = kg.DiagGMMCoefficients.from_parameters(means, variances, np.log(weights))
    lwl, ll, R = _naive(X, means, variances, weights)
    assert (lwl - lwl.max(1, keepdims=True) < np.log(np.finfo(float).tiny)).any()
    total, n, sum_px, sum_pxx = kg.accumulate_statistics(X, coef, 64)
    np.testing.assert_allclose(total, ll.sum(), rtol=1e-12)
    np.testing.assert_allclose(n, R.sum(0), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(sum_px, R.T @ X, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(sum_pxx, R.T @ X**2, rtol=1e-10, atol=1e-8)
