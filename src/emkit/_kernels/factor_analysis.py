"""Posterior maths of ISV and JFA (McCool et al. 2013) on stacked arrays.

Supervectors have length CD (row-major flatten of (C, D)).  A subspace ``W`` (U or V) is
(CD, r); its per-Gaussian blocks are ``W_c`` (D, r).  Everything here is vectorised over
Gaussians, sessions and classes: the posterior of a latent factor for S sessions is one stacked
(S, r, r) precision matrix, factorised by Cholesky (never an explicit ``inv``).

Notation: ``n`` (S, C) zeroth-order statistics, ``F`` (S, CD) first-order statistics,
``m`` (CD,) UBM mean supervector, ``var`` (CD,) UBM variance supervector.

The dense kernels are namespace-generic (numpy, PyTorch, CuPy through ``array-api-compat``; see
docs/gpu.md): numpy keeps its own faster paths (``out=``, in-place updates, LAPACK), every other
namespace runs the same algebra written in the array API standard (checked on CI with
``array-api-strict``).  The session-to-class sums built on ``scipy.sparse``
(:func:`class_weights`, :func:`class_weighted_sums`, :func:`class_offset_terms`, in
:mod:`emkit._kernels.factor_analysis_class`, re-exported here) have a dense fallback elsewhere
((S, C, r) temporaries); :func:`lower_inverse` is numpy only.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _xp
from . import factor_analysis_sessions as _sessions
from .linalg import lower_inverse
from .linalg import spd_inverse as _np_spd_inverse
from .linalg import spd_solve as _np_spd_solve
from .factor_analysis_class import (  # noqa: F401  (re-exported)
    block_projections,
    class_offset_terms,
    class_weighted_sums,
    class_weights,
    group_sum,
    slot_class_sums,
)
from .factor_analysis_sessions import (  # noqa: F401  (re-exported)
    packed_size,
    segment_class_sums,
    segment_offset_terms,
    segment_starts,
    session_moments,
    unpack_symmetric,
)

__all__ = [
    "project_rows",
    "subspace_products",
    "lower_inverse",
    "spd_inverse",
    "spd_solve",
    "symmetric_weighted_sum",
    "posterior_precision",
    "projection_products",
    "centred_projections",
    "second_moments",
    "posterior_covariance",
    "posterior_mean_only",
    "posterior_mean",
    "latent_posterior",
    "group_sum",
    "class_weights",
    "class_weighted_sums",
    "slot_class_sums",
    "class_offset_terms",
    "block_projections",
    "offset_outer_products",
    "accumulate_subspace",
    "update_subspace",
    "gaussian_major",
    "per_gaussian_products",
    "weighted_blocks",
    "block_products",
    "diagonal_posterior",
    "diagonal_gain",
    "packed_size",
    "unpack_symmetric",
    "session_moments",
    "segment_starts",
    "segment_class_sums",
    "segment_offset_terms",
]


#: Up to this many rows, :func:`project_rows` uses one matrix-vector product per row.
_FEW = 4


def spd_inverse(A):
    """Inverse of each symmetric positive definite matrix of ``A`` (S, n, n), any namespace."""
    xp = _xp.namespace(A)
    return _np_spd_inverse(A) if _xp.is_numpy(xp) else _xp.spd_inverse(A, xp)


def spd_solve(A, B):
    """Solve ``A_s X_s = B_s`` for SPD ``A`` (S, n, n) and B (S, n, k), any namespace."""
    xp = _xp.namespace(A, B)
    return _np_spd_solve(A, B) if _xp.is_numpy(xp) else _xp.spd_solve(A, B, xp)


def project_rows(F: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``F @ W`` (S, r) for F (S, CD), W (CD, r).

    A few rows are multiplied one matrix-vector product each: OpenBLAS's GEMM with 2-4 rows is
    about twice slower than that many GEMV calls at these sizes (enrolment, scoring).
    """
    if F.ndim == 1 or F.shape[0] == 1 or F.shape[0] > _FEW or not _xp.is_numpy(_xp.namespace(F, W)):
        return F @ W
    return np.matmul(F[:, None, :], W)[:, 0, :]


def subspace_products(W: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """``W_c^T diag(var_c)^-1 W_c`` for every Gaussian: (C, r, r) from W (CD, r), variances (C, D)."""
    C, D = variances.shape
    xp = _xp.namespace(W, variances)
    Wc = xp.reshape(W, (C, D, W.shape[1]))
    return xp.matmul(xp.permute_dims(Wc, (0, 2, 1)) / variances[:, None, :], Wc)




@functools.lru_cache(maxsize=16)
def _symmetric_indices(r: int):
    """``(packed, full)``: the flat indices of the upper triangle of an (r, r) matrix, and for every
    flat (i, j) the position of (min, max) among them (``full_matrix = packed_values[..., full]``)."""
    iu, ju = np.triu_indices(r)
    position = np.empty((r, r), dtype=np.intp)
    position[iu, ju] = position[ju, iu] = np.arange(len(iu))
    return iu * r + ju, position.ravel()


def symmetric_weighted_sum(weights: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``out[i] = sum_j weights[i, j] M[j]`` (I, r, r) for symmetric matrices ``M`` (J, r, r).

    One product over the r(r+1)/2 distinct entries (half the work of the full r*r).
    """
    r = M.shape[-1]
    I, J = weights.shape[0], M.shape[0]
    xp = _xp.namespace(weights, M)
    if not _xp.is_numpy(xp):
        packed, full = _symmetric_indices(r)
        values = weights @ _xp.take_index(xp.reshape(M, (J, r * r)), packed, 1, xp)
        return xp.reshape(_xp.take_index(values, full, 1, xp), (I, r, r))
    if len(weights) < _PACK_ROWS:  # packing M would cost more than it saves
        return project_rows(weights, M.reshape(len(M), r * r)).reshape(len(weights), r, r)
    packed, full = _symmetric_indices(r)
    values = weights @ M.reshape(len(M), r * r)[:, packed]
    return values[:, full].reshape(len(weights), r, r)


#: From this many rows of weights on, :func:`symmetric_weighted_sum` packs the matrices.
_PACK_ROWS = 32


def posterior_precision(n: np.ndarray, wprod: np.ndarray) -> np.ndarray:
    """``I + sum_c n_c W_c^T Sigma_c^-1 W_c`` for each row of ``n`` (S, C): (S, r, r)."""
    precision = symmetric_weighted_sum(n, wprod)
    xp = _xp.namespace(precision)
    if not _xp.is_numpy(xp):
        r = wprod.shape[-1]
        return precision + xp.eye(r, dtype=precision.dtype, device=_xp.device_of(precision))
    idx = np.arange(wprod.shape[-1])
    precision[:, idx, idx] += 1.0
    return precision


def second_moments(n: np.ndarray, cov: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``A1[c] = sum_s n_sc (cov_s + mean_s mean_s^T)``: (C, r, r) from n (S, C), cov (S, r, r)."""
    S, r = mean.shape
    xp = _xp.namespace(n, cov, mean)
    if not _xp.is_numpy(xp):
        packed, full = _symmetric_indices(r)
        i, j = np.divmod(packed, r)
        values = (_xp.take_index(xp.reshape(cov, (S, r * r)), packed, 1, xp)
                  + _xp.take_index(mean, i, 1, xp) * _xp.take_index(mean, j, 1, xp))
        return xp.reshape(_xp.take_index(n.T @ values, full, 1, xp), (n.shape[1], r, r))
    if n.shape[1] < _PACK_ROWS:
        return symmetric_weighted_sum(n.T, cov + mean[:, :, None] * mean[:, None, :])
    packed, full = _symmetric_indices(r)
    i, j = np.divmod(packed, r)
    values = cov.reshape(S, r * r)[:, packed] + mean[:, i] * mean[:, j]  # upper triangles only
    return (n.T @ values)[:, full].reshape(-1, r, r)


def projection_products(W_mean: np.ndarray, wprod: np.ndarray) -> np.ndarray:
    """``[W_mean | packed wprod]`` (C, r + r(r+1)/2): the n-terms of :func:`centred_projections`.

    ``W_mean[c] = sum_d m_cd W_cd / var_cd`` (:func:`weighted_blocks`) and ``wprod`` (C, r, r) of
    :func:`subspace_products`, of which only the upper triangles are kept (they are symmetric).
    """
    C, r, _ = wprod.shape
    packed, _ = _symmetric_indices(r)
    xp = _xp.namespace(W_mean, wprod)
    if not _xp.is_numpy(xp):
        return xp.concat([W_mean, _xp.take_index(xp.reshape(wprod, (C, r * r)), packed, 1, xp)],
                         axis=1)
    out = np.empty((C, r + len(packed)))
    out[:, :r] = W_mean
    _sessions._pack_upper_into(wprod, out[:, r:])
    return out


def centred_projections(n: np.ndarray, F: np.ndarray, W_over_var: np.ndarray, n_products):
    """``(precision (S, r, r), b (S, r))`` of the posterior of w for statistics centred on the mean:
    ``I + sum_c n_c W_c^T Sigma_c^-1 W_c`` and ``W^T Sigma^-1 (F - N m)``.

    ``n_products`` is :func:`projection_products`: one product with ``n`` gives both n-terms.
    This runs once per probe when scoring, hence the care for small matrices; ``n`` (C,) and
    ``F`` (CD,) give ``precision`` (r, r) and ``b`` (r,).
    """
    r = W_over_var.shape[1]
    _, full = _symmetric_indices(r)
    n_terms = project_rows(n, n_products)
    b = project_rows(F, W_over_var)
    xp = _xp.namespace(n_terms, b)
    if not _xp.is_numpy(xp):
        eye = xp.reshape(xp.eye(r, dtype=b.dtype, device=_xp.device_of(b)), (r * r,))
        precision = _xp.take_index(n_terms[..., r:], full, n_terms.ndim - 1, xp) + eye
        return xp.reshape(precision, tuple(n.shape[:-1]) + (r, r)), b - n_terms[..., :r]
    b -= n_terms[..., :r]
    precision = n_terms[..., r:][..., full]  # (S, r*r)
    precision[..., :: r + 1] += 1.0  # the diagonals
    return precision.reshape(n.shape[:-1] + (r, r)), b


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
    return (cov @ b[:, :, None])[:, :, 0]


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
    A1 = second_moments(n, cov, mean)
    A2 = centred.T @ mean
    return A1, A2


#: what a failed subspace update says (numpy and array-API paths)
_A1_NOT_POSITIVE_DEFINITE = (
    "subspace update: an accumulator A1 is not positive definite (degenerate statistics: check for "
    "NaN, Gaussians with (almost) no occupancy, or counts so large (near 1e300) that the latent "
    "posterior covariances vanish in rounding beside the latent means, which span fewer "
    "directions than the subspace's rank)")


def update_subspace(
    A1: np.ndarray, A2: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """``W_c = A2_c A1_c^-1`` for every Gaussian (Cholesky solves), W (CD, r).

    ``A1`` (C, r, r), or (numpy) its packed upper triangles (C, r(r+1)/2) (solved from the packed
    rows without unpacking them from rank :data:`LAPACK_RANK` on).  A Gaussian that no statistic
    ever reached (``A1_c == 0``) keeps its ``previous`` block (the update is 0/0 there); without
    ``previous`` it becomes zeros.
    """
    C, r = A1.shape[0], A2.shape[1]
    D = A2.shape[0] // C
    xp = _xp.namespace(A1, A2)
    if A1.ndim == 2 and (not _xp.is_numpy(xp) or r < _sessions.LAPACK_RANK):
        A1 = unpack_symmetric(A1, r)
    if not _xp.is_numpy(xp):
        return _update_subspace_xp(A1, A2, previous, xp)
    empty = ~np.any(A1.reshape(C, -1), axis=1)
    if empty.any():
        A1 = A1.copy()
        A1[empty] = np.eye(r) if A1.ndim == 3 else np.eye(r)[np.triu_indices(r)]
    try:
        if r >= _sessions.LAPACK_RANK:  # one LAPACK solve per Gaussian
            W = _sessions.solve_rows_each(A1, A2.reshape(C, D, r))
        else:
            W = spd_solve(A1, A2.reshape(C, D, r).transpose(0, 2, 1)).transpose(0, 2, 1)
    except np.linalg.LinAlgError as exc:
        raise FloatingPointError(_A1_NOT_POSITIVE_DEFINITE) from exc
    if empty.any():
        W[empty] = 0.0 if previous is None else previous.reshape(C, D, r)[empty]
    return np.ascontiguousarray(W.reshape(C * D, r))  # (a view for one Gaussian)


def _update_subspace_xp(A1, A2, previous, xp):
    """:func:`update_subspace` in the array API standard (``where`` instead of masked writes)."""
    C, r, _ = A1.shape
    D = A2.shape[0] // C
    empty = ~xp.any(xp.reshape(A1, (C, r * r)) != 0, axis=1)
    eye = xp.eye(r, dtype=A1.dtype, device=_xp.device_of(A1))
    A1 = xp.where(empty[:, None, None], eye, A1)
    try:
        Wt = spd_solve(A1, xp.permute_dims(xp.reshape(A2, (C, D, r)), (0, 2, 1)))
    except _xp.LinAlgFailure as exc:
        raise FloatingPointError(_A1_NOT_POSITIVE_DEFINITE) from exc
    W = xp.permute_dims(Wt, (0, 2, 1))
    keep = xp.zeros_like(W) if previous is None else xp.reshape(previous, (C, D, r))
    W = xp.where(empty[:, None, None], keep, W)
    return xp.reshape(W, (C * D, r))


def weighted_blocks(v: np.ndarray, W: np.ndarray, n_gaussians: int) -> np.ndarray:
    """``out[c] = sum_d v_cd W_cd`` (C, r) for a supervector ``v`` (CD,) and W (CD, r)."""
    C = n_gaussians
    r = W.shape[1]
    xp = _xp.namespace(v, W)
    return xp.matmul(xp.reshape(v, (C, 1, -1)), xp.reshape(W, (C, -1, r)))[:, 0, :]


def block_products(W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``out[c] = W_c G[c]`` (CD,) for W (CD, r) and G (C, r): one matrix-vector product per Gaussian."""
    C, r = G.shape
    xp = _xp.namespace(W, G)
    return xp.reshape(xp.matmul(xp.reshape(W, (C, -1, r)), G[:, :, None]), (-1,))


def gaussian_major(S: np.ndarray, n_gaussians: int) -> np.ndarray:
    """Per-class supervectors (K, CD) as a contiguous (C, D, K) array ("Gaussian-major": the layout
    in which :func:`per_gaussian_products` is produced and :func:`offset_outer_products` reads)."""
    K = S.shape[0]
    xp = _xp.namespace(S)
    if not _xp.is_numpy(xp):
        return xp.permute_dims(xp.reshape(S, (K, n_gaussians, -1)), (1, 2, 0))
    return np.ascontiguousarray(S.reshape(K, n_gaussians, -1).transpose(1, 2, 0))


def per_gaussian_products(
    W: np.ndarray, G: np.ndarray, n_gaussians: int, gaussian_major: bool = False, out=None
) -> np.ndarray:
    """``sum_{h in k} N_hc W_c x_h`` for every class: (K, CD) from W (CD, r) and G (K, C, r).

    ``G[k, c] = sum_{h in k} N_hc x_h`` (see :func:`class_weighted_sums`).  With
    ``gaussian_major=True`` the result is (C, D, K) (see :func:`gaussian_major`), without a copy,
    written into ``out`` when given.
    """
    C = n_gaussians
    K, _, r = G.shape
    xp = _xp.namespace(W, G)
    if not _xp.is_numpy(xp):
        res = xp.reshape(W, (C, -1, r)) @ xp.permute_dims(G, (1, 2, 0))  # (C, D, K)
        if out is not None:
            out[...] = res
            res = out
        return res if gaussian_major else xp.reshape(xp.permute_dims(res, (2, 0, 1)), (K, -1))
    Wc = W.reshape(C, -1, r)  # (C, D, r)
    out = np.matmul(Wc, G.transpose(1, 2, 0), out=out)  # (C, D, K)
    return out if gaussian_major else out.transpose(2, 0, 1).reshape(K, -1)


def offset_outer_products(offsets: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``sum_k offsets_k[c, d] G[k, c, :]`` as (CD, r): the term ``sum_h N_h o_k(h) x_h^T``.

    ``offsets`` is (K, CD), or (C, D, K) (:func:`gaussian_major`).
    """
    K, C, r = G.shape
    xp = _xp.namespace(offsets, G)
    O = (offsets if offsets.ndim == 3
         else xp.permute_dims(xp.reshape(offsets, (K, C, -1)), (1, 2, 0)))
    out = xp.matmul(O, xp.permute_dims(G, (1, 0, 2)))  # (C, D, K) @ (C, K, r)
    return xp.reshape(out, (-1, r))


def diagonal_posterior(N_sv: np.ndarray, centred: np.ndarray, D: np.ndarray, var: np.ndarray):
    """Posterior of the diagonal factor z per class (element-wise).

    ``L_D = 1 / (1 + D^2/var N)`` and ``z = L_D (D/var) centred``; N_sv (K, CD) is the class
    zeroth-order statistics repeated D times, centred (K, CD).  Returns ``(z, L_D)``.
    """
    d_over_var = D / var
    cov = 1.0 / (1.0 + (d_over_var * D) * N_sv)
    return cov * d_over_var * centred, cov


def diagonal_gain(N_sv: np.ndarray, D: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``D L_D D / var`` (K, CD): the class offset ``D z`` is this times the centred statistics.

    Same factors as :func:`diagonal_posterior`, so ``D z = gain * centred``; with D and N fixed
    (ISV training) it is computed once.
    """
    d_over_var = D / var
    if not _xp.is_numpy(_xp.namespace(N_sv, D, var)):
        return d_over_var * D / (1.0 + (d_over_var * D) * N_sv)
    gain = (d_over_var * D) * N_sv  # in place from here: one (K, CD) array
    gain += 1.0
    np.reciprocal(gain, out=gain)
    gain *= d_over_var
    gain *= D
    return gain
