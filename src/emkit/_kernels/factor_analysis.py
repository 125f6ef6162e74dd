"""Posterior maths of ISV and JFA (McCool et al. 2013) on stacked arrays.

Supervectors have length CD (row-major flatten of (C, D)).  A subspace ``W`` (U or V) is
(CD, r); its per-Gaussian blocks are ``W_c`` (D, r).  Everything here is vectorised over
Gaussians, sessions and classes: the posterior of a latent factor for S sessions is one stacked
(S, r, r) precision matrix, factorised by Cholesky (never an explicit ``inv``).

Notation: ``n`` (S, C) zeroth-order statistics, ``F`` (S, CD) first-order statistics,
``m`` (CD,) UBM mean supervector, ``var`` (CD,) UBM variance supervector.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse as _sparse
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

__all__ = [
    "subspace_products",
    "spd_inverse",
    "spd_solve",
    "posterior_precision",
    "posterior_covariance",
    "posterior_mean_only",
    "posterior_mean",
    "latent_posterior",
    "group_sum",
    "class_weighted_sums",
    "offset_outer_products",
    "accumulate_subspace",
    "update_subspace",
    "per_gaussian_products",
    "weighted_blocks",
    "block_products",
    "diagonal_posterior",
]


def subspace_products(W: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """``W_c^T diag(var_c)^-1 W_c`` for every Gaussian: (C, r, r) from W (CD, r), variances (C, D)."""
    C, D = variances.shape
    Wc = W.reshape(C, D, W.shape[1])
    return np.matmul(Wc.transpose(0, 2, 1) / variances[:, None, :], Wc)


def spd_inverse(P: np.ndarray) -> np.ndarray:
    """Inverse of stacked symmetric positive definite matrices (S, r, r) via their Cholesky factors.

    ``P = L L^T`` and ``P^-1 = L^-T L^-1``; ``L^-1`` comes from a forward substitution vectorised
    over the S matrices (r steps), about twice as fast as a stacked general solve.
    """
    L = np.linalg.cholesky(P)
    S, r, _ = L.shape
    L_inv = np.zeros_like(L)
    inv_diag = 1.0 / np.diagonal(L, axis1=1, axis2=2)
    for i in range(r):  # row i of L^-1 from rows 0..i-1
        row = (
            np.zeros((S, r))
            if i == 0
            else -np.matmul(L[:, i : i + 1, :i], L_inv[:, :i, :])[:, 0, :]
        )
        row[:, i] += 1.0
        L_inv[:, i, :] = row * inv_diag[:, i : i + 1]
    return np.matmul(L_inv.swapaxes(-1, -2), L_inv)


def spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^-1 B`` for stacked SPD ``A`` (S, r, r) and ``B`` (S, r, k): Cholesky, two triangular solves.

    A few matrices go straight to LAPACK (``potrf``/``potrs``, a few microseconds each) instead
    of numpy's stacked routines, whose set-up costs tens of microseconds.
    """
    if A.shape[0] <= _FEW:
        out = np.empty(np.broadcast_shapes(A.shape[:1], B.shape[:1]) + B.shape[1:])
        for i in range(A.shape[0]):
            factor, info = _potrf(A[i], lower=1, clean=0)
            if info == 0:
                out[i], info = _potrs(factor, B[i], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("Matrix is not positive definite")
        return out
    L = np.linalg.cholesky(A)
    return np.linalg.solve(L.swapaxes(-1, -2), np.linalg.solve(L, B))


#: Up to this many matrices, :func:`spd_solve` calls LAPACK once per matrix.
_FEW = 4


def posterior_precision(n: np.ndarray, wprod: np.ndarray) -> np.ndarray:
    """``I + sum_c n_c W_c^T Sigma_c^-1 W_c`` for each row of ``n`` (S, C): (S, r, r)."""
    S, C = n.shape
    r = wprod.shape[-1]
    precision = (n @ wprod.reshape(C, r * r)).reshape(S, r, r)
    idx = np.arange(r)
    precision[:, idx, idx] += 1.0
    return precision


def posterior_covariance(n: np.ndarray, wprod: np.ndarray) -> np.ndarray:
    """``L = (I + sum_c n_c W_c^T Sigma_c^-1 W_c)^-1`` for each row of ``n`` (S, C): (S, r, r)."""
    return spd_inverse(posterior_precision(n, wprod))


def posterior_mean_only(
    n: np.ndarray, centred: np.ndarray, W_over_var: np.ndarray, wprod: np.ndarray
):
    """The posterior means of :func:`latent_posterior` without forming the covariances: (S, r)."""
    b = centred @ W_over_var
    return spd_solve(posterior_precision(n, wprod), b[:, :, None])[:, :, 0]


def posterior_mean(cov: np.ndarray, centred: np.ndarray, W_over_var: np.ndarray) -> np.ndarray:
    """``L W^T Sigma^-1 centred`` for each row: (S, r) from cov (S, r, r) and centred (S, CD)."""
    b = centred @ W_over_var
    return np.matmul(cov, b[:, :, None])[:, :, 0]


def latent_posterior(n: np.ndarray, centred: np.ndarray, W_over_var: np.ndarray, wprod: np.ndarray):
    """Posterior of a latent factor ``w`` with prior N(0, I) for each row of statistics.

    Parameters
    ----------
    n : (S, C) zeroth-order statistics (one row per session, or per class)
    centred : (S, CD) centred first-order statistics ``F - N (m + offset)``
    W_over_var : (CD, r) the subspace divided row-wise by the variance supervector
    wprod : (C, r, r) :func:`subspace_products` of the subspace

    Returns
    -------
    mean : (S, r) ``L W^T Sigma^-1 centred``
    cov : (S, r, r) ``L = (I + sum_c n_c W_c^T Sigma_c^-1 W_c)^-1``
    """
    cov = posterior_covariance(n, wprod)
    return posterior_mean(cov, centred, W_over_var), cov


def accumulate_subspace(n: np.ndarray, centred: np.ndarray, mean: np.ndarray, cov: np.ndarray):
    """The M-step accumulators of a subspace from S posteriors.

    ``A1[c] = sum_s n_sc (cov_s + mean_s mean_s^T)`` (C, r, r) and
    ``A2 = sum_s centred_s mean_s^T`` (CD, r).
    """
    S, r = mean.shape
    second = cov + mean[:, :, None] * mean[:, None, :]
    A1 = (n.T @ second.reshape(S, r * r)).reshape(n.shape[1], r, r)
    A2 = centred.T @ mean
    return A1, A2


def update_subspace(
    A1: np.ndarray, A2: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """``W_c = A2_c A1_c^-1`` for every Gaussian (Cholesky solves), W (CD, r).

    A Gaussian that no statistic ever reached (``A1_c == 0``) keeps its ``previous`` block (the
    update is 0/0 there); without ``previous`` it becomes zeros.
    """
    C, r, _ = A1.shape
    D = A2.shape[0] // C
    empty = ~np.any(A1.reshape(C, -1), axis=1)
    if empty.any():
        A1 = A1.copy()
        A1[empty] = np.eye(r)
    try:
        Wt = spd_solve(A1, A2.reshape(C, D, r).transpose(0, 2, 1))
    except np.linalg.LinAlgError as exc:
        raise FloatingPointError(
            "subspace update: an accumulator A1 is not positive definite (degenerate statistics: "
            "check for NaN or Gaussians with (almost) no occupancy)"
        ) from exc
    W = Wt.transpose(0, 2, 1)
    if empty.any():
        W[empty] = 0.0 if previous is None else previous.reshape(C, D, r)[empty]
    return W.reshape(C * D, r)


def weighted_blocks(v: np.ndarray, W: np.ndarray, n_gaussians: int) -> np.ndarray:
    """``out[c] = sum_d v_cd W_cd`` (C, r) for a supervector ``v`` (CD,) and W (CD, r)."""
    C = n_gaussians
    r = W.shape[1]
    return np.matmul(v.reshape(C, 1, -1), W.reshape(C, -1, r))[:, 0, :]


def block_products(W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``out[c] = W_c G[c]`` (CD,) for W (CD, r) and G (C, r): one matrix-vector product per Gaussian."""
    C, r = G.shape
    return np.matmul(W.reshape(C, -1, r), G[:, :, None]).reshape(-1)


def per_gaussian_products(W: np.ndarray, G: np.ndarray, n_gaussians: int) -> np.ndarray:
    """``sum_{h in k} N_hc W_c x_h`` for every class: (K, CD) from W (CD, r) and G (K, C, r).

    ``G[k, c] = sum_{h in k} N_hc x_h`` (see :func:`class_weighted_sums`).
    """
    C = n_gaussians
    K, _, r = G.shape
    Wc = W.reshape(C, -1, r)  # (C, D, r)
    out = np.matmul(Wc, G.transpose(1, 2, 0))  # (C, D, K)
    return out.transpose(2, 0, 1).reshape(K, -1)


def offset_outer_products(offsets: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``sum_k offsets_k[c, d] G[k, c, :]`` as (CD, r): the term ``sum_h N_h o_k(h) x_h^T``."""
    K, C, r = G.shape
    O = offsets.reshape(K, C, -1)  # (K, C, D)
    out = np.matmul(O.transpose(1, 2, 0), G.transpose(1, 0, 2))  # (C, D, r)
    return out.reshape(-1, r)


def group_sum(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[k] = sum_{s: codes_s = k} values[s]``: (K, ...), rows of a group added in input order.

    One product with a sparse (K, S) indicator matrix (much faster than ``np.add.at`` or a
    ``reduceat`` over rows).
    """
    S = len(codes)
    if S == 0:
        return np.zeros((n_groups,) + values.shape[1:])
    indicator = _sparse.csr_array((np.ones(S), (codes, np.arange(S))), shape=(n_groups, S))
    return np.asarray(indicator @ values.reshape(S, -1)).reshape((n_groups,) + values.shape[1:])


def class_weighted_sums(
    codes: np.ndarray, n: np.ndarray, mean: np.ndarray, n_classes: int
) -> np.ndarray:
    """``G[k, c] = sum_{s: codes_s = k} n_sc mean_s``: (K, C, r)."""
    return group_sum(codes, n[:, :, None] * mean[:, None, :], n_classes)


def diagonal_posterior(N_sv: np.ndarray, centred: np.ndarray, D: np.ndarray, var: np.ndarray):
    """Posterior of the diagonal factor z per class (element-wise).

    ``L_D = 1 / (1 + D^2/var N)`` and ``z = L_D (D/var) centred``; N_sv (K, CD) is the class
    zeroth-order statistics repeated D times, centred (K, CD).  Returns ``(z, L_D)``.
    """
    d_over_var = D / var
    cov = 1.0 / (1.0 + (d_over_var * D) * N_sv)
    return cov * d_over_var * centred, cov
