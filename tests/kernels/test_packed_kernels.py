"""Packed symmetric triangles and the per-matrix LAPACK kernels of the i-vector E-step."""

import numpy as np
import pytest
from _parity import assert_parity

from emkit._kernels import ivector as kiv
from emkit._kernels import packed as pk


@pytest.mark.parametrize("n", [1, 7, pk.TRTRI_LEAF + 1, 2 * pk.TRTRI_LEAF + 37])
def test_upper_inverse_in_place_reads_the_upper_triangle_only(n):
    rng = np.random.default_rng(n)
    U = np.triu(rng.normal(size=(n, n))) + 3 * np.sqrt(n) * np.eye(n)
    work = np.asfortranarray(U + np.tril(np.full((n, n), np.nan), -1))  # garbage below
    pk.upper_inverse(work)
    assert_parity(np.triu(work), np.linalg.inv(U), tol=1e-12)


@pytest.mark.parametrize("R", [3, 2 * pk.TRTRI_LEAF + 5])
def test_posterior_rows_match_explicit_inverses(R):
    rng = np.random.default_rng(R)
    S = 3
    A = rng.normal(size=(S, R, R)) / np.sqrt(R)
    P = A @ A.transpose(0, 2, 1)  # the precision is I + P
    b = rng.normal(size=(S, R))
    packed = P.reshape(S, -1)[:, pk.lower_index(R)].copy()
    w, half, buffer = np.empty((S, R)), np.empty(S), np.full((R, R), np.nan)
    pk.posterior_rows(packed, b, w, half, buffer)
    inverse = np.linalg.inv(np.eye(R) + P)
    w_ref = np.einsum("sij,sj->si", inverse, b)
    ww_ref = inverse + w_ref[:, :, None] * w_ref[:, None, :]
    assert_parity(w, w_ref, tol=1e-11)
    assert_parity(packed, ww_ref.reshape(S, -1)[:, pk.lower_index(R)], tol=1e-11)
    log_det = np.linalg.slogdet(np.eye(R) + P)[1]
    assert_parity(half, 0.5 * np.einsum("sr,sr->s", b, w_ref) - 0.5 * log_det, tol=1e-11)
    # the symmetric index expands the packed triangle to the full symmetric matrices
    assert_parity(packed[:, pk.symmetric_index(R)].reshape(S, R, R), ww_ref, tol=1e-11)


def test_posterior_rows_reject_an_indefinite_precision():
    packed = np.array([[-2.0, 0.0, 0.0]])  # I + [[-2, 0], [0, 0]]
    with pytest.raises(pk.NotPositiveDefinite):
        pk.posterior_rows(packed, np.ones((1, 2)), np.empty((1, 2)), np.empty(1), np.empty((2, 2)))


def test_accumulate_rejects_negative_occupancies():
    rng = np.random.default_rng(2)
    C, D, R = 2, 3, 4
    pre = kiv.Precomputed.from_parameters(rng.normal(size=(C, D)), rng.normal(size=(C, D, R)) * 3,
                                          np.ones((C, D)))
    n = np.array([[-50.0, 1.0]])
    acc = type("Acc", (), {})()
    acc.nij_sigma_wij2, acc.fnorm_sigma_wij = np.zeros((C, R, R)), np.zeros((C, D, R))
    acc.snormij, acc.nij = np.zeros((C, D)), np.zeros(C)
    with pytest.raises(ValueError, match="not positive definite.*non-negative"):
        kiv.accumulate(n, np.zeros((1, C, D)), np.ones((1, C, D)), pre, acc)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_gemm_add_adds_in_place(layout):
    rng = np.random.default_rng(3)
    a = {"C": rng.normal(size=(6, 4)), "F": np.asfortranarray(rng.normal(size=(6, 4))),
         "strided": rng.normal(size=(4, 9)).T[:6]}[layout]
    b = rng.normal(size=(4, 5)) if layout != "F" else rng.normal(size=(5, 4)).T
    out = rng.normal(size=(6, 5))
    expected = out + a @ b
    view = out
    pk.gemm_add(view, a, b)
    assert view is out
    assert_parity(out, expected, tol=1e-13)


def test_gemm_add_with_beta_zero_overwrites_without_reading():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 5))
    out = np.full((6, 5), np.nan)
    pk.gemm_add(out, a, b, beta=0.0)
    assert_parity(out, a @ b, tol=1e-13)
    pk.gemm_add(out, a[:, :0], b[:0], beta=0.0)  # an empty product overwrites with zeros
    assert not out.any()
    out[...] = 2.0
    pk.gemm_add(out, a[:, :0], b[:0], beta=0.5)
    assert np.all(out == 1.0)


@pytest.mark.parametrize("R", [1, 5, 64])
def test_gram_lower_and_unpack_lower(R):
    rng = np.random.default_rng(R)
    A = rng.normal(size=(2 * R + 3, R))
    packed, gram = np.full(R * (R + 1) // 2, np.nan), np.full((R, R), np.nan)
    pk.gram_lower(A, packed, gram)
    assert_parity(packed, (A.T @ A).reshape(-1)[pk.lower_index(R)], tol=1e-12)
    buffer = np.full((R, R), 7.0)
    pk.unpack_lower(packed, buffer)
    lower = np.tril_indices(R)
    assert_parity(buffer[lower], (A.T @ A)[lower], tol=1e-12)
    assert np.all(buffer[np.triu_indices(R, 1)] == 7.0)  # the rest left as it was


def test_m_step_reads_packed_or_full_accumulators_alike():
    rng = np.random.default_rng(4)
    C, D, R = 4, 3, 6
    A = rng.normal(size=(C, R, 2 * R))
    full = A @ A.transpose(0, 2, 1)
    full[1] = 0.0  # an empty Gaussian: T_1 = 0
    first, snorm, nij = rng.normal(size=(C, D, R)), rng.uniform(5, 9, (C, D)), np.full(C, 4.0)
    packed = full.reshape(C, -1)[:, pk.lower_index(R)]
    sigma = np.ones((C, D))
    T_full, s_full = kiv.m_step(full, first, snorm, nij, sigma, True, 1e-3)
    T_packed, s_packed = kiv.m_step(packed, first, snorm, nij, sigma, True, 1e-3)
    assert_parity(T_packed, T_full, tol=1e-12)
    assert_parity(s_packed, s_full, tol=1e-12)
    assert np.all(T_packed[1] == 0)


def test_ivector_stats_keep_the_second_order_packed_until_read():
    from emkit import IVectorStats

    rng = np.random.default_rng(5)
    C, D, R = 3, 2, 4
    a, b = IVectorStats(C, D, R), IVectorStats(C, D, R)
    for stats in (a, b):
        stats._packed_second_order()[...] = rng.normal(size=(C, R * (R + 1) // 2))
    full_a = a._packed_second_order()[:, pk.symmetric_index(R)].reshape(C, R, R)
    full_b = b._packed_second_order()[:, pk.symmetric_index(R)].reshape(C, R, R)
    total = a + b
    assert total._packed_second_order() is not None  # packed + packed stays packed
    assert_parity(total.nij_sigma_wij2, full_a + full_b, tol=1e-15)
    assert np.array_equal(b.nij_sigma_wij2, np.swapaxes(b.nij_sigma_wij2, 1, 2))
    assert b._packed_second_order() is None  # expanded once read
    a += b  # packed + full
    assert_parity(a.nij_sigma_wij2, full_a + full_b, tol=1e-15)
    a.nij_sigma_wij2 = np.zeros((C, R, R))
    assert not a.nij_sigma_wij2.any()
