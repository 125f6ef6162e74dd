"""The stacked ISV/JFA kernels against plain loops over Gaussians, sessions and classes."""

import numpy as np
import pytest
from _parity import assert_parity
from hypothesis import given, settings
from hypothesis import strategies as st

from emkit.factor_analysis._estep import session_chunk
from emkit.factor_analysis._training import session_params, u_accumulator
from emkit._kernels import factor_analysis as kfa
from emkit.factor_analysis import ISVMachine, JFAMachine, mult_along_axis, reduce_iadd
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats


def _problem(C=3, D=2, r=2, S=7, K=3, seed=0):
    rng = np.random.default_rng(seed)
    var = rng.uniform(0.5, 2.0, size=(C, D))
    W = rng.normal(size=(C * D, r))
    n = rng.uniform(0.0, 5.0, size=(S, C))
    F = rng.normal(size=(S, C * D)) * 3
    codes = rng.integers(0, K, size=S)
    return rng, var, W, n, F, codes


def test_subspace_products_and_posterior_match_loops():
    rng, var, W, n, F, _ = _problem()
    C, D = var.shape
    r = W.shape[1]
    wprod = kfa.subspace_products(W, var)
    for c in range(C):
        Wc = W[c * D : (c + 1) * D]
        assert_parity(wprod[c], Wc.T @ np.diag(1 / var[c]) @ Wc, tol=1e-13)
    mean, cov = kfa.latent_posterior(n, F, W / var.ravel()[:, None], wprod)
    for s in range(len(n)):
        precision = np.eye(r) + sum(n[s, c] * wprod[c] for c in range(C))
        expected_cov = np.linalg.inv(precision)
        assert_parity(cov[s], expected_cov, tol=1e-12)
        assert_parity(
            mean[s], expected_cov @ (W.T / var.ravel()) @ F[s], tol=1e-12
        )
    assert_parity(
        kfa.posterior_mean_only(n, F, W / var.ravel()[:, None], wprod), mean, tol=1e-12
    )


@pytest.mark.parametrize("stack", [1, 5])
def test_spd_solve_and_inverse(stack):
    rng = np.random.default_rng(stack)
    A = rng.normal(size=(stack, 4, 6))
    P = A @ A.transpose(0, 2, 1) + np.eye(4)
    B = rng.normal(size=(stack, 4, 3))
    assert_parity(kfa.spd_solve(P, B), np.linalg.solve(P, B), tol=1e-12)
    np.testing.assert_allclose(
        kfa.spd_inverse(P) @ P, np.broadcast_to(np.eye(4), P.shape), atol=1e-12
    )
    with pytest.raises(np.linalg.LinAlgError):
        kfa.spd_solve(-P, B)


def test_accumulate_and_update_subspace_match_loops():
    rng, var, W, n, F, _ = _problem()
    C, D = var.shape
    mean, cov = kfa.latent_posterior(n, F, W / var.ravel()[:, None], kfa.subspace_products(W, var))
    A1, A2 = kfa.accumulate_subspace(n, F, mean, cov)
    for c in range(C):
        expected = sum(n[s, c] * (cov[s] + np.outer(mean[s], mean[s])) for s in range(len(n)))
        assert_parity(A1[c], expected, tol=1e-12)
    assert_parity(
        A2, sum(np.outer(F[s], mean[s]) for s in range(len(n))), tol=1e-12
    )
    new = kfa.update_subspace(A1, A2)
    for c in range(C):
        rows = slice(c * D, (c + 1) * D)
        assert_parity(new[rows], A2[rows] @ np.linalg.inv(A1[c]), tol=1e-10)
    # a Gaussian that no statistic reached keeps its previous block
    A1[1] = 0.0
    kept = kfa.update_subspace(A1, A2, previous=W)
    np.testing.assert_array_equal(kept[D : 2 * D], W[D : 2 * D])
    assert np.isfinite(kept).all()


def test_class_level_helpers_match_loops():
    rng, var, W, n, F, codes = _problem(S=9, K=4)
    C, D = var.shape
    K = 4
    x = rng.normal(size=(len(n), W.shape[1]))
    G = kfa.class_weighted_sums(codes, n, x, K)
    for k in range(K):
        for c in range(C):
            expected = sum(
                (n[s, c] * x[s] for s in range(len(n)) if codes[s] == k), np.zeros(W.shape[1])
            )
            assert_parity(G[k, c], expected, tol=1e-13)
    UG = kfa.per_gaussian_products(W, G, C)
    for k in range(K):
        expected = sum(
            (np.repeat(n[s], D) * (W @ x[s]) for s in range(len(n)) if codes[s] == k),
            np.zeros(C * D),
        )
        assert_parity(UG[k], expected, tol=1e-12)
    offsets = rng.normal(size=(K, C * D))
    expected = sum(np.outer(np.repeat(n[s], D) * offsets[codes[s]], x[s]) for s in range(len(n)))
    assert_parity(
        kfa.offset_outer_products(offsets, G), expected, tol=1e-12
    )
    Dd, N_sv = rng.uniform(0.1, 1, C * D), np.repeat(n[:2], D, axis=1)
    z, cov = kfa.diagonal_posterior(N_sv, F[:2], Dd, var.ravel())
    assert_parity(cov, 1 / (1 + Dd**2 / var.ravel() * N_sv), tol=1e-14)
    assert_parity(z, cov * Dd / var.ravel() * F[:2], tol=1e-14)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.integers(0, 2**31 - 1))
def test_group_sum_is_a_per_class_sum(codes, seed):
    codes = np.array(codes)
    values = np.random.default_rng(seed).normal(size=(len(codes), 3, 2))
    out = kfa.group_sum(codes, values, 5)
    for k in range(5):
        assert_parity(out[k], values[codes == k].sum(axis=0), tol=1e-13)


@pytest.mark.parametrize("with_y", [False, True])
def test_session_chunk_matches_a_loop_over_sessions(with_y):
    """The fused E-step pass (x from F directly, offsets folded in later) against the plain formulas."""
    rng, var, U, n, F, codes = _problem(C=3, D=2, r=2, S=8, K=3, seed=3)
    C, D = var.shape
    K, rV = 3, 2
    means = rng.normal(size=(C, D))
    m, v = means.ravel(), var.ravel()
    V, y = rng.normal(size=(C * D, rV)), rng.normal(size=(K, rV))
    ubm = GMMMachine(C)
    ubm.means, ubm.variances = means, var
    fa = JFAMachine(2, rV, ubm=ubm) if with_y else ISVMachine(2, ubm=ubm)
    fa.U, fa.D = U, np.ones(C * D)
    if with_y:
        fa.V = V
    pairs = []
    for s in range(len(n)):
        stats = GMMStats(C, D)
        stats.init_fields(0.0, 1, n[s], F[s].reshape(C, D), np.zeros((C, D)))
        pairs.append((int(codes[s]), stats))
    offsets = (y @ V.T) if with_y else None
    params = session_params(fa._constants(), K, offsets)
    acc = session_chunk(pairs, params)
    A2 = u_accumulator(fa._constants(), acc, offsets)
    uprod = kfa.subspace_products(U, var)
    A1_ref, A2_ref, G_ref = np.zeros((C, 2, 2)), np.zeros((C * D, 2)), np.zeros((K, C, 2))
    for s in range(len(n)):
        offset = m + (V @ y[codes[s]] if with_y else 0)
        centred = F[s] - np.repeat(n[s], D) * offset
        L = np.linalg.inv(np.eye(2) + np.einsum("c,cij->ij", n[s], uprod))
        x = L @ (U.T / v) @ centred
        A1_ref += n[s][:, None, None] * (L + np.outer(x, x))
        A2_ref += np.outer(centred, x)
        G_ref[codes[s]] += n[s][:, None] * x
    assert_parity(acc.A1, A1_ref, tol=1e-11)
    assert_parity(A2, A2_ref, tol=1e-10)
    assert_parity(acc.G, G_ref, tol=1e-11)
    # the class totals that ISV's first pass sums along
    params.totals = True
    totals = session_chunk(pairs, params).totals
    for k in range(K):
        assert_parity(totals.n[k], n[codes == k].sum(axis=0), tol=1e-13)
        assert_parity(totals.F[k], F[codes == k].sum(axis=0), tol=1e-13)
    assert totals.counts.tolist() == np.bincount(codes, minlength=K).tolist()
    # additivity: two halves give the whole
    halves = session_chunk(pairs[:3], params) + session_chunk(pairs[3:], params)
    assert_parity(halves.A1, acc.A1, tol=1e-13)
    assert_parity(halves.A2F, acc.A2F, tol=1e-13)


def test_module_helpers():
    A = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(mult_along_axis(A, np.array([1.0, 2.0, 3.0]), 1), A * [1, 2, 3])
    np.testing.assert_array_equal(mult_along_axis(A, np.array([2.0, 3.0]), 0), A * [[2], [3]])
    with pytest.raises(ValueError, match="Length of 'A'"):
        mult_along_axis(A, np.ones(4), 0)
    a, b = np.ones(2), np.full(2, 2.0)
    assert np.array_equal(reduce_iadd([a, b]), [3.0, 3.0]) and np.array_equal(
        a, [1.0, 1.0]
    )  # not mutated
    s1, s2 = reduce_iadd([a, a], [b, b])
    assert np.array_equal(s1, [2.0, 2.0]) and np.array_equal(s2, [4.0, 4.0])


# -- kernels of the fast paths (blocks of sessions, single probes) --------------------------------


@pytest.mark.parametrize("S", [1, 2, 4, 7])
def test_project_rows_and_symmetric_sums(S):
    rng, var, W, n, F, _ = _problem(C=40, S=S)
    assert_parity(kfa.project_rows(F, W), F @ W, tol=1e-13)
    assert_parity(kfa.project_rows(F[0], W), F[0] @ W, tol=1e-13)
    M = rng.normal(size=(40, 3, 3))
    M = M + M.transpose(0, 2, 1)
    cov = rng.normal(size=(S, 3, 3))
    cov = cov + cov.transpose(0, 2, 1)
    x = rng.normal(size=(S, 3))
    for weights in (n, n.T):  # fewer and more rows than the packing threshold
        expected = np.einsum("ij,jab->iab", weights, M if weights is n else cov)
        got = kfa.symmetric_weighted_sum(weights, M if weights is n else cov)
        assert_parity(got, expected, tol=1e-12)
    expected = sum(n[s][:, None, None] * (cov[s] + np.outer(x[s], x[s])) for s in range(S))
    assert_parity(kfa.second_moments(n, cov, x), expected, tol=1e-12)
    assert_parity(
        kfa.second_moments(n[:, :5], cov, x), expected[:5], tol=1e-12
    )


def test_centred_projections_and_single_solves():
    rng, var, W, n, F, _ = _problem(C=4, D=3, r=3, S=5)
    C, D = var.shape
    m = rng.normal(size=C * D)
    Wov = W / var.ravel()[:, None]
    wprod = kfa.subspace_products(W, var)
    products = kfa.projection_products(kfa.weighted_blocks(m, Wov, C), wprod)
    precision, b = kfa.centred_projections(n, F, Wov, products)
    for s in range(len(n)):
        assert_parity(
            precision[s], np.eye(3) + np.einsum("c,cij->ij", n[s], wprod), tol=1e-12
        )
        assert_parity(b[s], Wov.T @ (F[s] - np.repeat(n[s], D) * m), tol=1e-11)
        one_precision, one_b = kfa.centred_projections(n[s], F[s], Wov, products)
        assert_parity(one_precision, precision[s], tol=1e-14)
        assert_parity(one_b, b[s], tol=1e-14)
        assert_parity(
            kfa.spd_solve(precision[s], b[s]), np.linalg.solve(precision[s], b[s]), tol=1e-12
        )
    many = np.concatenate([precision] * 2)  # more than the few solved one by one
    rhs = rng.normal(size=(len(many), 3, 2))
    assert_parity(kfa.spd_solve(many, rhs), np.linalg.solve(many, rhs), tol=1e-12)
    L = np.linalg.cholesky(many)
    np.testing.assert_allclose(
        kfa.lower_inverse(L) @ L, np.broadcast_to(np.eye(3), L.shape), atol=1e-13
    )
    with pytest.raises(np.linalg.LinAlgError):
        kfa.spd_solve(-precision[0], b[0])


def test_per_class_terms_match_loops():
    rng, var, W, n, F, codes = _problem(C=3, D=2, r=2, S=9, K=4)
    C, D = var.shape
    K, r = 4, 2
    x = rng.normal(size=(len(n), r))
    G = kfa.class_weighted_sums(codes, n, x, K)
    # dense per-class slots, on the classes present (local indices)
    present, local = np.unique(codes, return_inverse=True)
    assert_parity(
        kfa.slot_class_sums(local, n, x, len(present)), G[present], tol=1e-12
    )
    # U_c^T Sigma_c^-1 o_kc per class and Gaussian, and sum_c n_sc Q[k(s), c] per session
    offsets = rng.normal(size=(K, C * D))
    Q = kfa.block_projections(offsets, W, C)
    for k in range(K):
        for c in range(C):
            rows = slice(c * D, (c + 1) * D)
            assert_parity(Q[k, c], W[rows].T @ offsets[k, rows], tol=1e-12)
    terms = kfa.class_offset_terms(kfa.class_weights(codes, n, K), Q)
    for s in range(len(n)):
        expected = sum(n[s, c] * Q[codes[s], c] for c in range(C))
        assert_parity(terms[s], expected, tol=1e-12)
    # the Gaussian-major (C, D, K) layout gives the same products
    major = kfa.per_gaussian_products(W, G, C, gaussian_major=True)
    np.testing.assert_array_equal(kfa.gaussian_major(kfa.per_gaussian_products(W, G, C), C), major)
    assert_parity(
        kfa.offset_outer_products(kfa.gaussian_major(offsets, C), G),
        kfa.offset_outer_products(offsets, G),
        tol=1e-14,
    )
    # the ISV gain: D z = gain * centred
    Dd, N_sv = rng.uniform(0.1, 1, C * D), np.repeat(n[:2], D, axis=1)
    z, _ = kfa.diagonal_posterior(N_sv, F[:2], Dd, var.ravel())
    assert_parity(
        kfa.diagonal_gain(N_sv, Dd, var.ravel()) * F[:2], Dd * z, tol=1e-14
    )
