"""The i-vector kernels against naive oracles: per-utterance loops with explicit inverses, scipy."""

from types import SimpleNamespace

import numpy as np
import pytest
from _parity import assert_parity
from scipy.stats import multivariate_normal

from emkit._kernels import ivector as kiv
from emkit._kernels import linalg


def _spd_stack(rng, S, n):
    A = rng.normal(size=(S, n, n)) * 0.4
    return np.eye(n) + A @ A.transpose(0, 2, 1)


@pytest.mark.parametrize("S,n,k", [(1, 1, 1), (5, 3, 2), (4, 16, 1), (3, 17, 4), (2, 45, 3), (2, 100, 1)])
def test_triangular_kernels_match_numpy(S, n, k):
    rng = np.random.default_rng(n)
    P = _spd_stack(rng, S, n)
    L = np.linalg.cholesky(P)
    B = rng.normal(size=(S, n, k))
    Li = linalg.lower_inverse(L)
    np.testing.assert_allclose(Li @ L, np.broadcast_to(np.eye(n), L.shape), atol=1e-12)
    assert np.all(np.triu(Li, 1) == 0)
    assert_parity(linalg.solve_lower(L, B), np.linalg.solve(L, B), tol=1e-11)
    U = np.ascontiguousarray(L.transpose(0, 2, 1))
    assert_parity(linalg.solve_upper(U, B), np.linalg.solve(U, B), tol=1e-11)
    assert_parity(linalg.cholesky_solve(P, B), np.linalg.solve(P, B), tol=1e-11)


@pytest.mark.parametrize("budget", [8, 200, 10**9])
def test_gemm_accumulate_in_row_blocks(budget):
    rng = np.random.default_rng(1)
    out = rng.normal(size=(7, 5))
    a, b = rng.normal(size=(9, 7)).T, rng.normal(size=(9, 5))
    expected = out + a @ b
    kiv.gemm_accumulate(out, a, b, budget_bytes=budget)
    assert_parity(out, expected, tol=1e-12)


def _problem(rng, S=6, C=3, D=2, R=4):
    means = rng.normal(size=(C, D))
    sigma = rng.uniform(0.5, 2.0, size=(C, D))
    T = rng.normal(size=(C, D, R))
    n = rng.gamma(2.0, 3.0, size=(S, C))
    F = n[:, :, None] * (means + 0.5 * rng.normal(size=(S, C, D)))
    Sx = n[:, :, None] * (means**2 + rng.uniform(0.5, 2.0, size=(S, C, D)))
    return means, sigma, T, n, F, Sx


def _accumulate(n, F, Sx, pre, acc, *args, **kwargs):
    """kiv.accumulate into ``acc``, counting the returned log-likelihood and utterances too."""
    log_likelihood, n_sessions = kiv.accumulate(n, F, Sx, pre, acc, *args, **kwargs)
    acc.log_likelihood += log_likelihood
    acc.n_sessions += n_sessions


def _naive_estep(means, sigma, T, n, F, Sx):
    """The reference's per-utterance formulas, with explicit inverses."""
    S, C = n.shape
    D, R = T.shape[1:]
    acc = SimpleNamespace(nij_sigma_wij2=np.zeros((C, R, R)), fnorm_sigma_wij=np.zeros((C, D, R)),
                          snormij=np.zeros((C, D)), nij=np.zeros(C), w=[])
    for s in range(S):
        P = np.eye(R)
        b = np.zeros(R)
        for c in range(C):
            TtS = T[c].T / sigma[c]
            P += n[s, c] * TtS @ T[c]
            b += TtS @ (F[s, c] - n[s, c] * means[c])
        Pinv = np.linalg.inv(P)
        w = Pinv @ b
        acc.w.append(w)
        for c in range(C):
            fnorm = F[s, c] - n[s, c] * means[c]
            acc.nij_sigma_wij2[c] += n[s, c] * (Pinv + np.outer(w, w))
            acc.fnorm_sigma_wij[c] += np.outer(fnorm, w)
            acc.snormij[c] += Sx[s, c] - 2 * F[s, c] * means[c] + n[s, c] * means[c] ** 2
            acc.nij[c] += n[s, c]
    return acc


def _empty_acc(C, D, R):
    return SimpleNamespace(nij_sigma_wij2=np.zeros((C, R, R)), fnorm_sigma_wij=np.zeros((C, D, R)),
                           snormij=np.zeros((C, D)), nij=np.zeros(C), log_likelihood=0.0, n_sessions=0)


def test_batched_estep_matches_per_utterance_loop():
    rng = np.random.default_rng(3)
    means, sigma, T, n, F, Sx = _problem(rng)
    pre = kiv.Precomputed.from_parameters(means, T, sigma)
    naive = _naive_estep(means, sigma, T, n, F, Sx)
    assert_parity(kiv.project(n, F - n[:, :, None] * means, pre), np.array(naive.w), tol=1e-11)
    acc = _empty_acc(*T.shape)
    _accumulate(n[:4], F[:4], Sx[:4], pre, acc)  # two batches add up to the whole
    _accumulate(n[4:], F[4:], Sx[4:], pre, acc)
    for name in ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij"):
        assert_parity(getattr(acc, name), getattr(naive, name), tol=1e-11, err_msg=name)
    assert acc.n_sessions == len(n)


def test_log_likelihood_is_the_marginal_density_of_hard_aligned_frames():
    """With hard alignments the statistics' log-likelihood is a multivariate normal density."""
    rng = np.random.default_rng(4)
    C, D, R = 3, 2, 2
    means, sigma, T = rng.normal(size=(C, D)), rng.uniform(0.5, 2, size=(C, D)), rng.normal(size=(C, D, R))
    pre = kiv.Precomputed.from_parameters(means, T, sigma)
    acc = _empty_acc(C, D, R)
    expected = 0.0
    for frames_per_utt in (5, 9):
        comp = rng.integers(0, C, frames_per_utt)
        X = rng.normal(size=(frames_per_utt, D)) * 2
        onehot = np.eye(C)[comp]
        n, F, Sx = onehot.sum(0), onehot.T @ X, onehot.T @ X**2
        _accumulate(n[None], F[None], Sx[None], pre, acc)
        # x = m_c + T_c w + e: all frames jointly Gaussian with covariance Sigma + A A'
        A = T[comp].reshape(-1, R)
        cov = np.diag(sigma[comp].reshape(-1)) + A @ A.T
        expected += multivariate_normal(means[comp].reshape(-1), cov).logpdf(X.reshape(-1))
    np.testing.assert_allclose(acc.log_likelihood, expected, rtol=1e-12)


def test_m_step_matches_per_gaussian_solves_and_keeps_empty_gaussians():
    rng = np.random.default_rng(5)
    means, sigma, T, n, F, Sx = _problem(rng, S=8, C=4, D=3, R=2)
    n[:, 2] = 0.0  # Gaussian 2 never occupied
    F[:, 2] = 0.0
    Sx[:, 2] = 0.0
    acc = _naive_estep(means, sigma, T, n, F, Sx)
    with np.errstate(divide="ignore", invalid="ignore"):
        T_new, sigma_new = kiv.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, acc.snormij, acc.nij,
                                      sigma, True, 1e-10)
    for c in (0, 1, 3):
        X = np.linalg.solve(acc.nij_sigma_wij2[c].T, acc.fnorm_sigma_wij[c].T)
        assert_parity(T_new[c], X.T, tol=1e-11)
        expected = (acc.snormij[c] - np.diag(acc.fnorm_sigma_wij[c] @ X)) / acc.nij[c]
        assert_parity(sigma_new[c], np.maximum(expected, 1e-10), tol=1e-11)
    assert np.all(T_new[2] == 0)  # as the reference
    np.testing.assert_array_equal(sigma_new[2], sigma[2])  # the reference gave inf/NaN here
    assert np.isfinite(sigma_new).all()
    T_same, sigma_same = kiv.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, acc.snormij, acc.nij,
                                    sigma, False, 1e-10)
    assert sigma_same is sigma
    assert_parity(T_same, T_new, tol=1e-15)


def test_variance_floor_applies_to_updated_sigma():
    rng = np.random.default_rng(6)
    means, sigma, T, n, F, Sx = _problem(rng)
    acc = _naive_estep(means, sigma, T, n, F, Sx)
    _, s = kiv.m_step(acc.nij_sigma_wij2, acc.fnorm_sigma_wij, acc.snormij, acc.nij, sigma, True, 1e3)
    assert np.all(s == 1e3)


SIZES = [(2, 3, 2), (64, 20, 50), (256, 60, 200), (512, 60, 200), (512, 60, 400), (2048, 60, 400),
         (4096, 60, 600), (16, 60, 4000)]


@pytest.mark.parametrize("C, D, R", SIZES)
def test_default_batch_size_keeps_the_working_set_within_budget(C, D, R):
    """Accumulators + one batch's temporaries <= 1.5x the accumulators + 256 MB (or one
    utterance when even that does not fit), the largest such batch up to MAX_BATCH; compared with
    the former rule (one (batch, R, R) stack in 64 MB)."""
    batch = kiv.default_batch_size(C, D, R)
    acc = kiv.accumulator_bytes(C, D, R)
    assert 1 <= batch <= kiv.MAX_BATCH
    assert acc == 8 * (C * R * R + C * D * R + C * D + C)
    if batch > 1:
        assert acc + kiv.batch_bytes(batch, C, D, R) <= 1.5 * acc + 256 * 2**20
    # the largest batch within budget, unless capped
    assert batch == kiv.MAX_BATCH or acc + kiv.batch_bytes(batch + 1, C, D, R) > 1.5 * acc + 256 * 2**20
    former = max(1, 64 * 2**20 // (8 * R * R))
    # about as large where the accumulators are small (the former rule did not count the other
    # stacks of a batch), much larger where they are large
    assert batch >= 0.75 * min(former, kiv.MAX_BATCH)
    if acc >= 600 * 2**20:  # large accumulators (the former rule: 52 utterances at R=400)
        assert batch >= 1.5 * former


@pytest.mark.parametrize("C, D, R", SIZES)
@pytest.mark.parametrize("threads", [1, 2, 16, 64])
def test_projection_batches_of_all_threads_stay_within_budget(C, D, R, threads):
    """All threads' batches <= the constants + 256 MB, the largest such batch within
    [MIN_PROJECTION_BATCH, MAX_BATCH]: the memory of a projection does not grow with the cores."""
    batch = kiv.projection_batch_size(C, D, R, concurrent=threads)
    budget = kiv.constants_bytes(C, D, R) + 256 * 2**20
    assert kiv.constants_bytes(C, D, R) == 8 * (C * R * (R + 1) // 2 + C * D * R)
    assert kiv.MIN_PROJECTION_BATCH <= batch <= kiv.MAX_BATCH
    if batch > kiv.MIN_PROJECTION_BATCH:
        assert threads * kiv.batch_bytes(batch, C, D, R, projection=True) <= budget
    if batch < kiv.MAX_BATCH:
        assert threads * kiv.batch_bytes(batch + 1, C, D, R, projection=True) > budget
    if (C, D, R) == (2048, 60, 400):
        assert batch == {1: 512, 2: 512, 16: 69, 64: 64}[threads]


def test_centre_in_place_equals_the_whole_product(monkeypatch):
    rng = np.random.default_rng(8)
    n, F, means = rng.uniform(0, 5, (7, 4)), rng.normal(size=(7, 4, 3)), rng.normal(size=(4, 3))
    expected = F - n[:, :, None] * means
    monkeypatch.setattr(kiv, "_COPY_BYTES", 2 * 4 * 3 * 8)  # blocks of 2 utterances, the last 1
    got = kiv.centre_in_place(n, F, means)
    assert got is F and np.array_equal(got, expected)


def test_batch_bytes_counts_the_batch_arrays():
    """The per-utterance counts cover the arrays a batch allocates: the E-step's stacked and
    centred statistics and packed precision (no (R, R) stack: one buffer per thread), and the
    projection's stacked statistics (centred in place) and packed precision."""
    C, D, R = 8, 3, 5
    per_utt = kiv.batch_bytes(1, C, D, R) - kiv.DEFAULT_BATCH_BYTES
    arrays = (4 * C * D + C) + R * (R + 1) // 2 + 2 * R  # stats stacked and centred, packed, b, w
    assert per_utt >= 8 * arrays
    fixed = kiv.batch_bytes(0, C, D, R, projection=True)
    assert fixed >= 8 * (C * D + R * R)  # a block of n m (>= one utterance's), the (R, R) buffer
    per_utt = kiv.batch_bytes(1, C, D, R, projection=True) - fixed
    assert per_utt >= 8 * ((C * D + C) + R * (R + 1) // 2 + 2 * R)  # n, sum_px, packed, b, w


def test_parallel_pieces_share_one_accumulator():
    from emkit._backend import map_ordered

    rng = np.random.default_rng(7)
    means, sigma, T, n, F, Sx = _problem(rng, S=9, C=5, D=3, R=6)
    pre = kiv.Precomputed.from_parameters(means, T, sigma)
    serial, parallel = _empty_acc(*T.shape), _empty_acc(*T.shape)
    _accumulate(n, F, Sx, pre, serial)
    _accumulate(n, F, Sx, pre, parallel, lambda fn, items: map_ordered(fn, items, 2), 3)
    for name in ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood"):
        assert_parity(getattr(parallel, name), getattr(serial, name), tol=1e-12, err_msg=name)


def test_packed_accumulator_in_a_workspace_matches_the_full_one():
    """With a workspace the (C, R, R) accumulator's symmetric half is summed packed over the
    batches and added to both triangles by flush_packed: the same as the full products."""
    from emkit._backend import map_ordered

    rng = np.random.default_rng(11)
    means, sigma, T, n, F, Sx = _problem(rng, S=11, C=5, D=3, R=7)
    pre = kiv.Precomputed.from_parameters(means, T, sigma)
    full, packed = _empty_acc(*T.shape), _empty_acc(*T.shape)
    _accumulate(n, F, Sx, pre, full)
    workspace = {}
    for sl in (slice(0, 4), slice(4, 11)):  # two batches of different sizes, same workspace
        _accumulate(n[sl], F[sl], Sx[sl], pre, packed,
                       lambda fn, items: map_ordered(fn, items, 2), 2, workspace)
    assert not packed.nij_sigma_wij2.any()  # nothing written before the flush
    kiv.flush_packed(workspace, packed)
    assert workspace == {}
    second = packed.nij_sigma_wij2
    assert np.array_equal(second, np.swapaxes(second, 1, 2))
    for name in ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood"):
        assert_parity(getattr(packed, name), getattr(full, name), tol=1e-12, err_msg=name)
