"""Total-variability (i-vector) kernels on the Python array API standard (numpy, PyTorch, CuPy,
``array-api-strict``): the E-step, M-step and projection of :mod:`emkit._kernels.ivector`,
written once for every namespace (``xp`` is taken from the arguments).

Notation as in :mod:`emkit._kernels.ivector`: S utterances in a batch, C Gaussians, D features,
R = ``dim_t``; ``T`` (C, D, R), ``sigma`` (C, D), ``n`` (S, C), centred first-order statistics
``fnorm = F - n m`` (S, C, D).  The posterior precision of utterance s,
``P_s = I + sum_c n_sc T_c' sigma_c^-1 T_c``, comes for the whole batch from ONE product
``n (S, C) @ tt (C, R*R)``; the (S, R, R) stack is factorised by one stacked Cholesky
(``_xp.cholesky``) and the means ``w_s = P_s^-1 b_s`` and covariances ``P_s^-1`` come from
Cholesky solves (``_xp.cho_solve``: ``torch.cholesky_solve``, triangular solves on CuPy).

The numpy kernels (:mod:`emkit._kernels.ivector`) stay the CPU path: packed triangles, recursive
triangular inverses and scratch reuse tuned for a few CPU cores.  These kernels keep the full
(C, R*R) constants and plain stacked products, which is what a GPU runs best; they also run on
numpy (for the tests), where they agree with the CPU path to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from . import _xp
from ._ivector_messages import NOT_POSITIVE_DEFINITE

__all__ = ["Constants", "Accumulators", "constants", "centre", "precision_matrices",
           "linear_terms", "posterior", "accumulate", "finish_log_likelihood", "m_step",
           "project"]

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Constants:
    """Per-iteration constants of T and sigma, on the arrays' device (see :func:`constants`)."""

    means: Any  # (C, D) UBM means
    inv_sigma: Any  # (C, D)
    t_sigma_inv: Any  # (C*D, R): rows of sigma^-1 T
    tt: Any  # (C, R*R): T_c' sigma_c^-1 T_c, flattened
    log_norm: Any  # (C,): -(D log 2 pi + sum_d log sigma_cd) / 2

    @property
    def shape(self) -> tuple[int, int, int]:
        C, D = self.means.shape
        return C, D, self.t_sigma_inv.shape[1]


def constants(means, T, sigma) -> Constants:
    """The :class:`Constants` of T (C, D, R), sigma (C, D) and the UBM means (C, D)."""
    xp = _xp.namespace(means, T, sigma)
    C, D, R = T.shape
    tsi = T / sigma[:, :, None]
    tt = xp.matmul(xp.permute_dims(tsi, (0, 2, 1)), T)  # (C, R, R)
    return Constants(
        means=means,
        inv_sigma=1.0 / sigma,
        t_sigma_inv=xp.reshape(tsi, (C * D, R)),
        tt=xp.reshape(tt, (C, R * R)),
        log_norm=-0.5 * (D * LOG_2PI + xp.sum(xp.log(sigma), axis=1)),
    )


def centre(n, sum_px, means):
    """``fnorm = F - n m`` (S, C, D) from n (S, C), sum_px (S, C, D) and means (C, D)."""
    return sum_px - n[:, :, None] * means


def precision_matrices(n, pre: Constants):
    """``I + sum_c n_sc T_c' sigma_c^-1 T_c`` for each row of ``n`` (S, C): (S, R, R)."""
    xp = _xp.namespace(n, pre.tt)
    R = pre.shape[2]
    eye = xp.eye(R, dtype=n.dtype, device=_xp.device_of(n))
    return xp.reshape(n @ pre.tt, (n.shape[0], R, R)) + eye


def linear_terms(fnorm, pre: Constants):
    """``b_s = sum_c T_c' sigma_c^-1 fnorm_sc`` for fnorm (S, C, D): (S, R)."""
    xp = _xp.namespace(fnorm)
    return xp.reshape(fnorm, (fnorm.shape[0], -1)) @ pre.t_sigma_inv


def _cholesky(P, xp):
    try:
        return _xp.cholesky(P, xp)
    except _xp.LinAlgFailure:
        raise ValueError(NOT_POSITIVE_DEFINITE) from None


def project(n, fnorm, pre: Constants):
    """Posterior means ``w_s = P_s^-1 b_s`` (the i-vectors) of a batch: (S, R)."""
    xp = _xp.namespace(n, fnorm)
    L = _cholesky(precision_matrices(n, pre), xp)
    b = linear_terms(fnorm, pre)
    return _xp.cho_solve(L, b[:, :, None], xp)[:, :, 0]


def posterior(n, fnorm, pre: Constants):
    """First and second posterior moments of w for a batch.

    Returns ``w`` (S, R), ``ww`` (S, R, R) = ``P^-1 + w w'`` and the per-utterance term
    ``b'w / 2 - log|P| / 2`` (S,) of the log-likelihood of the statistics.
    """
    xp = _xp.namespace(n, fnorm)
    S, R = n.shape[0], pre.shape[2]
    L = _cholesky(precision_matrices(n, pre), xp)
    b = linear_terms(fnorm, pre)
    eye = xp.eye(R, dtype=n.dtype, device=_xp.device_of(n))
    # L^-1 by one batched triangular solve (cuBLAS trsm on CUDA), then products only:
    # w = L^-T (L^-1 b) and P^-1 = L^-T L^-1 (the numpy kernel's algebra)
    Li = _xp.solve_triangular(L, xp.broadcast_to(eye, (S, R, R)), xp, lower=True)
    Lit = xp.permute_dims(Li, (0, 2, 1))
    w = (Lit @ (Li @ b[:, :, None]))[:, :, 0]
    ww = Lit @ Li + w[:, :, None] * w[:, None, :]
    log_det = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(L)), axis=1)
    return w, ww, 0.5 * xp.sum(b * w, axis=1) - 0.5 * log_det


@dataclass
class Accumulators:
    """The E-step sums on the arrays' device (the fields of :class:`emkit.ivector.IVectorStats`):
    ``nij_sigma_wij2`` (C, R, R), ``fnorm_sigma_wij`` (C, D, R), ``nij`` (C,), ``log_likelihood``
    (a 0-d array: the batches' terms without the second-order one, see
    :func:`finish_log_likelihood`) and ``n_sessions`` (int)."""

    nij_sigma_wij2: Any
    fnorm_sigma_wij: Any
    nij: Any
    log_likelihood: Any
    n_sessions: int = 0

    @classmethod
    def zeros(cls, pre: Constants) -> "Accumulators":
        xp = _xp.namespace(pre.tt)
        C, D, R = pre.shape
        kw = dict(dtype=pre.tt.dtype, device=_xp.device_of(pre.tt))
        return cls(xp.zeros((C, R, R), **kw), xp.zeros((C, D, R), **kw), xp.zeros((C,), **kw),
                   xp.zeros((), **kw))

    def add(self, n, fnorm, pre: Constants) -> "Accumulators":
        """Add the E-step statistics of one batch, n (S, C) and fnorm (S, C, D), in place (the
        standard's in-place operators); returns ``self``."""
        xp = _xp.namespace(n, fnorm)
        (S, C), (_, D, R) = n.shape, pre.shape
        w, ww, utt = posterior(n, fnorm, pre)
        self.nij_sigma_wij2 += xp.reshape(n.T @ xp.reshape(ww, (S, R * R)), (C, R, R))
        self.fnorm_sigma_wij += xp.reshape(xp.reshape(fnorm, (S, C * D)).T @ w, (C, D, R))
        n_total = xp.sum(n, axis=0)
        self.nij += n_total
        self.log_likelihood += xp.sum(utt) + xp.sum(n_total * pre.log_norm)
        self.n_sessions += S
        return self


def accumulate(n, fnorm, pre: Constants, acc: Accumulators) -> Accumulators:
    """``acc.add(n, fnorm, pre)``: the E-step statistics of one batch added to ``acc``."""
    return acc.add(n, fnorm, pre)


def finish_log_likelihood(acc: Accumulators, snorm, pre: Constants) -> float:
    """The total log-likelihood of the statistics: the accumulated terms plus
    ``-sum(snorm / sigma) / 2`` of the centred second-order statistics ``snorm`` (C, D) of all
    utterances (a constant of the data set, summed once on the host)."""
    xp = _xp.namespace(snorm, pre.inv_sigma)
    return float(acc.log_likelihood - 0.5 * xp.sum(snorm * pre.inv_sigma))


def m_step(nij_sigma_wij2, fnorm_sigma_wij, snormij, nij, sigma, update_sigma: bool,
           variance_floor: float):
    """New ``(T (C, D, R), sigma (C, D))`` from summed accumulators, as
    :func:`emkit._kernels.ivector.m_step`: ``T_c = fnorm_sigma_wij_c A_c^-1`` with
    ``A_c = nij_sigma_wij2_c'`` for the Gaussians whose A_c is not all zero (the others get
    ``T_c = 0``), one stacked Cholesky solve (a general solve when a matrix is numerically
    semi-definite); ``sigma_c = (snormij_c - diag(fnorm_sigma_wij_c T_c')) / nij_c`` floored at
    ``variance_floor`` where ``nij_c > 0`` (elsewhere kept)."""
    xp = _xp.namespace(nij_sigma_wij2, fnorm_sigma_wij, snormij, nij, sigma)
    C, D, R = fnorm_sigma_wij.shape
    A = xp.permute_dims(nij_sigma_wij2, (0, 2, 1))
    active = xp.any(xp.reshape(A != 0, (C, R * R)), axis=1)[:, None, None]
    eye = xp.eye(R, dtype=A.dtype, device=_xp.device_of(A))
    A = xp.where(active, A, eye)  # identity for unreached Gaussians: solvable, result zeroed
    B = xp.permute_dims(fnorm_sigma_wij, (0, 2, 1))
    try:
        X = _xp.cho_solve(_xp.cholesky(A, xp), B, xp)
    except _xp.LinAlgFailure:  # vanishing occupancies: LU, as the reference does
        X = xp.linalg.solve(A, B)
    T = xp.where(active, xp.permute_dims(X, (0, 2, 1)), xp.zeros_like(fnorm_sigma_wij))
    if not update_sigma:
        return T, sigma
    occupied = nij > 0
    explained = xp.sum(fnorm_sigma_wij * T, axis=2)
    safe_n = xp.where(occupied, nij, xp.ones_like(nij))
    updated = (snormij - explained) / safe_n[:, None]
    updated = xp.where(updated < variance_floor, xp.full_like(updated, variance_floor), updated)
    return T, xp.where(occupied[:, None], updated, sigma)
