"""The stacked ISV/JFA kernels against plain loops over Gaussians, sessions and classes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emkit._factor_analysis_data import session_chunk
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
        np.testing.assert_allclose(wprod[c], Wc.T @ np.diag(1 / var[c]) @ Wc, rtol=1e-13)
    mean, cov = kfa.latent_posterior(n, F, W / var.ravel()[:, None], wprod)
    for s in range(len(n)):
        precision = np.eye(r) + sum(n[s, c] * wprod[c] for c in range(C))
        expected_cov = np.linalg.inv(precision)
        np.testing.assert_allclose(cov[s], expected_cov, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            mean[s], expected_cov @ (W.T / var.ravel()) @ F[s], rtol=1e-12, atol=1e-13
        )
    np.testing.assert_allclose(
        kfa.posterior_mean_only(n, F, W / var.ravel()[:, None], wprod), mean, rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("stack", [1, 5])
def test_spd_solve_and_inverse(stack):
    rng = np.random.default_rng(stack)
    A = rng.normal(size=(stack, 4, 6))
    P = A @ A.transpose(0, 2, 1) + np.eye(4)
    B = rng.normal(size=(stack, 4, 3))
    np.testing.assert_allclose(kfa.spd_solve(P, B), np.linalg.solve(P, B), rtol=1e-12, atol=1e-14)
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
        np.testing.assert_allclose(A1[c], expected, rtol=1e-12)
    np.testing.assert_allclose(
        A2, sum(np.outer(F[s], mean[s]) for s in range(len(n))), rtol=1e-12, atol=1e-12
    )
    new = kfa.update_subspace(A1, A2)
    for c in range(C):
        rows = slice(c * D, (c + 1) * D)
        np.testing.assert_allclose(new[rows], A2[rows] @ np.linalg.inv(A1[c]), rtol=1e-10)
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
            np.testing.assert_allclose(G[k, c], expected, rtol=1e-13, atol=1e-15)
    UG = kfa.per_gaussian_products(W, G, C)
    for k in range(K):
        expected = sum(
            (np.repeat(n[s], D) * (W @ x[s]) for s in range(len(n)) if codes[s] == k),
            np.zeros(C * D),
        )
        np.testing.assert_allclose(UG[k], expected, rtol=1e-12, atol=1e-13)
    offsets = rng.normal(size=(K, C * D))
    expected = sum(np.outer(np.repeat(n[s], D) * offsets[codes[s]], x[s]) for s in range(len(n)))
    np.testing.assert_allclose(
        kfa.offset_outer_products(offsets, G), expected, rtol=1e-12, atol=1e-12
    )
    Dd, N_sv = rng.uniform(0.1, 1, C * D), np.repeat(n[:2], D, axis=1)
    z, cov = kfa.diagonal_posterior(N_sv, F[:2], Dd, var.ravel())
    np.testing.assert_allclose(cov, 1 / (1 + Dd**2 / var.ravel() * N_sv), rtol=1e-14)
    np.testing.assert_allclose(z, cov * Dd / var.ravel() * F[:2], rtol=1e-14)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.integers(0, 2**31 - 1))
def test_group_sum_is_a_per_class_sum(codes, seed):
    codes = np.array(codes)
    values = np.random.default_rng(seed).normal(size=(len(codes), 3, 2))
    out = kfa.group_sum(codes, values, 5)
    for k in range(5):
        np.testing.assert_allclose(out[k], values[codes == k].sum(axis=0), rtol=1e-13, atol=1e-14)


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
    params = fa._session_params(K, y if with_y else None, class_sums=True)
    acc = session_chunk(pairs, params)
    A2 = fa._U_accumulator(acc)
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
    np.testing.assert_allclose(acc.A1, A1_ref, rtol=1e-11)
    np.testing.assert_allclose(A2, A2_ref, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(acc.G, G_ref, rtol=1e-11, atol=1e-13)
    # the class totals that ISV's first pass sums along
    params.totals = True
    totals = session_chunk(pairs, params).totals
    for k in range(K):
        np.testing.assert_allclose(totals.n[k], n[codes == k].sum(axis=0), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(totals.F[k], F[codes == k].sum(axis=0), rtol=1e-13, atol=1e-14)
    assert totals.counts.tolist() == np.bincount(codes, minlength=K).tolist()
    # additivity: two halves give the whole
    halves = session_chunk(pairs[:3], params) + session_chunk(pairs[3:], params)
    np.testing.assert_allclose(halves.A1, acc.A1, rtol=1e-13)
    np.testing.assert_allclose(halves.A2F, acc.A2F, rtol=1e-13, atol=1e-13)


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
