"""PLDA kernels: class statistics, the latent posterior, the M-steps and LLR scoring.

Pure array maths (ndarray in, ndarray out).  Every PLDA variant is written as

    x = mu + F h + e,     h ~ N(0, I_r),     e ~ N(0, W)          (one h per class)

with a model-specific within-class covariance ``W`` (two-covariance and simplified: a full ``W = S``,
``F`` of rank ``D`` for two-covariance so that ``F F^T = S_b``; Prince-Elder: ``W = G G^T +
diag(sigma)``).  With ``L`` the
Cholesky factor of ``W``, ``Ft = L^-1 F`` and the eigendecomposition ``Ft^T Ft = V diag(lam) V^T``,
the posterior precision of ``h`` for a class of ``n`` vectors, ``I + n Ft^T Ft``, is diagonal in the
basis ``V`` for every ``n`` at once: all classes (training) and all models/probes (scoring) are
handled by element-wise scalings ``1 / (1 + n lam)`` and matrix products, without any per-class
factorisation and without explicit inverses of ``W``.

Scoring (:func:`scoring_basis`, :func:`llr_matrix`) is namespace-generic: it runs unchanged on
numpy, PyTorch or CuPy arrays (``array-api-compat``; see docs/gpu.md), numpy through its own
faster paths.  Training runs on numpy.

Training statistics are computed once: centred class sums and the centred scatter matrix; an EM
iteration then costs O(K r^2 + D^2 (r + K)) whatever the number of vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from . import _xp

LOG_2PI = np.log(2.0 * np.pi)


class NotPositiveDefiniteError(ValueError):
    """A covariance that must be positive definite is not (raised with the matrix's name)."""


def cholesky(A: np.ndarray, name: str) -> np.ndarray:
    """Lower Cholesky factor of ``A`` or a :class:`NotPositiveDefiniteError` naming ``A``."""
    xp = _xp.namespace(A)
    try:
        if not _xp.is_numpy(xp):
            return _xp.cholesky(A, xp)
        return linalg.cholesky(A, lower=True, check_finite=False)
    except (linalg.LinAlgError, _xp.LinAlgFailure) as exc:
        raise NotPositiveDefiniteError(
            f"the {name} is not positive definite ({exc}); the data may have constant or collinear "
            "features: reduce the dimension first (e.g. PCA/LDA) or raise variance_threshold"
        ) from None


def floor_eigenvalues(S: np.ndarray, floor: float) -> np.ndarray:
    """Symmetrise ``S`` and raise its eigenvalues to at least ``floor``.

    Clipping the eigenvalues is the maximiser of the Gaussian likelihood under the constraint
    ``S >= floor * I``, so EM stays monotone when the floor is active.
    """
    S = 0.5 * (S + S.T)
    w, U = linalg.eigh(S, check_finite=False)
    if w[0] >= floor:
        return S
    return (U * np.maximum(w, floor)) @ U.T


def eigen_factor(S: np.ndarray, n_columns: int | None = None) -> np.ndarray:
    """``F`` with ``F F^T`` = the best rank-``n_columns`` PSD approximation of symmetric ``S``."""
    w, U = linalg.eigh(0.5 * (S + S.T), check_finite=False)
    w, U = w[::-1], U[:, ::-1]
    if n_columns is not None:
        w, U = w[:n_columns], U[:, :n_columns]
    return U * np.sqrt(np.maximum(w, 0.0))


# ---------------------------------------------------------------------------------------------
# training statistics
# ---------------------------------------------------------------------------------------------


@dataclass
class ClassStatistics:
    """Sufficient statistics of labelled data, centred at ``offset`` (the data mean).

    counts (K,), sums (K, D) of centred vectors per class, scatter (D, D) = sum of x x^T of the
    centred vectors, n_samples, offset (D,).
    """

    counts: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray
    n_samples: int
    offset: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.sums.sum(axis=0)

    @property
    def within_scatter(self) -> np.ndarray:
        """sum over vectors of (x - class mean)(x - class mean)^T."""
        means = self.sums / self.counts[:, None]
        return self.scatter - self.sums.T @ means


def class_sums(X: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class sums of the rows of ``X``, (n_classes, D): one sort and segment sums."""
    order = np.argsort(codes, kind="stable")
    present, first = np.unique(codes[order], return_index=True)
    sums = np.zeros((n_classes, X.shape[1]))
    if len(present):
        sums[present] = np.add.reduceat(X[order], first, axis=0)
    return sums


class PartialStatistics:
    """Class sums and scatter of a chunk of rows; additive (for the backend's ``map_reduce``)."""

    def __init__(self, sums, scatter):
        self.sums, self.scatter = sums, scatter

    def __add__(self, other):
        return PartialStatistics(self.sums + other.sums, self.scatter + other.scatter)


def statistics_chunk(X, start, offset, codes, n_classes) -> PartialStatistics:
    """Statistics of rows ``start:start+len(X)`` of the data, centred at ``offset``."""
    Xc = X - offset
    return PartialStatistics(class_sums(Xc, codes[start:start + X.shape[0]], n_classes), Xc.T @ Xc)


def class_statistics(offset, counts, partial: PartialStatistics) -> ClassStatistics:
    return ClassStatistics(counts, partial.sums, 0.5 * (partial.scatter + partial.scatter.T),
                           int(counts.sum()), offset)


# ---------------------------------------------------------------------------------------------
# posterior of the class variable and marginal log-likelihood
# ---------------------------------------------------------------------------------------------


@dataclass
class Posterior:
    """Posterior of ``h`` for every class: means ``m`` (K, r) and the covariances
    ``V diag(gamma[i]) V^T`` with ``gamma[i] = 1 / (1 + n_i lam)`` (K, r)."""

    m: np.ndarray
    gamma: np.ndarray
    V: np.ndarray
    log_likelihood: float

    def sum_cov(self, weights=None) -> np.ndarray:
        """sum_i w_i Cov(h_i) as an (r, r) matrix."""
        g = self.gamma.sum(axis=0) if weights is None else weights @ self.gamma
        return (self.V * g) @ self.V.T


def _whitened_factor(F: np.ndarray, W: np.ndarray, name: str):
    L = cholesky(W, name)
    xp = _xp.namespace(F, W)
    if not _xp.is_numpy(xp):
        Ft = _xp.solve_triangular(L, F, xp, lower=True)
        lam, V = xp.linalg.eigh(Ft.T @ Ft)
        return L, Ft, xp.clip(lam, min=0.0), V
    Ft = linalg.solve_triangular(L, F, lower=True, check_finite=False)
    lam, V = linalg.eigh(Ft.T @ Ft, check_finite=False)
    return L, Ft, np.maximum(lam, 0.0), V


def posterior(stats: ClassStatistics, mu: np.ndarray, F: np.ndarray, W: np.ndarray) -> Posterior:
    """E-step: the latent posterior of every class and the data's marginal log-likelihood.

    ``mu`` is relative to ``stats.offset``.  The log-likelihood of a class with vectors x_j is
    ``sum_j log N(x_j; mu, W) + b^T Lambda^-1 b / 2 - log|Lambda| / 2`` with
    ``b = F^T W^-1 sum_j (x_j - mu)`` and ``Lambda = I + n F^T W^-1 F``.
    """
    n = stats.counts
    N, D = stats.n_samples, W.shape[0]
    L, Ft, lam, V = _whitened_factor(F, W, "within-class covariance W")
    centred = stats.sums - n[:, None] * mu  # (K, D): sum_j (x_j - mu) per class
    Z = linalg.solve_triangular(L, centred.T, lower=True, check_finite=False)  # (D, K)
    bv = (Z.T @ Ft) @ V  # b in the eigenbasis, (K, r)
    gamma = 1.0 / (1.0 + n[:, None] * lam)
    m = (bv * gamma) @ V.T
    s = stats.total
    tc = stats.scatter - np.outer(s, mu) - np.outer(mu, s) + N * np.outer(mu, mu)
    trace = np.trace(linalg.cho_solve((L, True), tc, check_finite=False))
    logdet_w = 2.0 * np.log(np.diag(L)).sum()
    ll = (-0.5 * (N * D * LOG_2PI + N * logdet_w + trace)
          + 0.5 * np.sum(bv * bv * gamma) + 0.5 * np.sum(np.log(gamma)))
    return Posterior(m, gamma, V, float(ll))


# ---------------------------------------------------------------------------------------------
# M-steps (exact maximisers of the expected complete-data log-likelihood)
# ---------------------------------------------------------------------------------------------


def _solve_affine(xz: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """``B`` with ``B zz = xz`` for symmetric positive definite ``zz`` (Cholesky solve)."""
    c = cholesky(0.5 * (zz + zz.T), "posterior second-moment matrix")
    return linalg.cho_solve((c, True), xz.T, check_finite=False).T


def m_step_simplified(stats, mu, F, post: Posterior, floor: float):
    """Joint update of ``[F, mu]`` (latent ``[h; 1]``), then the full noise covariance S."""
    n, N, r = stats.counts, stats.n_samples, F.shape[1]
    hsum = post.m.T @ n
    r_hh = post.sum_cov(n) + post.m.T @ (n[:, None] * post.m)
    xz = np.column_stack([stats.sums.T @ post.m, stats.total])
    zz = np.empty((r + 1, r + 1))
    zz[:r, :r], zz[:r, r], zz[r, :r], zz[r, r] = r_hh, hsum, hsum, N
    B = _solve_affine(xz, zz)
    S = (stats.scatter - B @ xz.T) / N
    mu, F = _expand_class_factor(B[:, r], B[:, :r], post)
    return mu, F, floor_eigenvalues(S, floor)


def _expand_class_factor(mu, F, post: Posterior):
    """Parameter-expanded EM ("minimum divergence") step for the class variable.

    In the expanded model ``h ~ N(h0, S_h)`` the M-step for ``(h0, S_h)`` is the posterior mean and
    covariance of ``h`` over the classes, separate from the ``F``/``mu``/noise updates; mapping back
    to ``h ~ N(0, I)`` (``mu += F h0``, ``F <- F chol(S_h)``) keeps the likelihood, so the step is
    monotone and speeds up EM's otherwise slow convergence along ``F``.
    """
    K = post.m.shape[0]
    h0 = post.m.mean(axis=0)
    dm = post.m - h0
    s_hh = post.sum_cov() / K + dm.T @ dm / K
    return mu + F @ h0, F @ cholesky(0.5 * (s_hh + s_hh.T), "posterior covariance of h")


def m_step_full(stats, mu, F, G, sigma, post: Posterior, floor: float):
    """Prince-Elder ``x = mu + F h_i + G w_ij + eps``: joint update of ``[F, G, mu]``, then sigma.

    ``w_ij`` given ``h_i`` and ``x_ij`` has precision ``Q = I + G^T diag(sigma)^-1 G`` and mean
    ``K (x_ij - mu - F h_i)`` with ``K = Q^-1 G^T diag(sigma)^-1``; its moments summed over the
    vectors reduce to the scatter matrix and the class sums.
    """
    n, N = stats.counts, stats.n_samples
    rf, rg = F.shape[1], G.shape[1]
    m, s = post.m, stats.total
    gs = G.T / sigma  # G^T Sigma^-1, (rg, D)
    q = cholesky(np.eye(rg) + gs @ G, "matrix I + G^T Sigma^-1 G")
    Kw = linalg.cho_solve((q, True), gs, check_finite=False)  # (rg, D)
    q_inv = linalg.cho_solve((q, True), np.eye(rg), check_finite=False)  # Cov(w | h, x)
    hsum = m.T @ n
    r_hh = post.sum_cov(n) + m.T @ (n[:, None] * m)
    xh = stats.sums.T @ m  # sum_j x_j E[h]^T, (D, rf)
    ch = xh - np.outer(mu, hsum)  # sum_j (x_j - mu) E[h]^T
    tc = stats.scatter - np.outer(s, mu) - np.outer(mu, s) + N * np.outer(mu, mu)
    fch = F @ ch.T
    resid = tc - fch - fch.T + F @ r_hh @ F.T  # sum_j E[(x_j - mu - F h)(...)^T]
    xw = (stats.scatter - np.outer(s, mu) - xh @ F.T) @ Kw.T
    hw = (ch.T - r_hh @ F.T) @ Kw.T
    w1 = Kw @ (s - N * mu - F @ hsum)
    ww = N * q_inv + Kw @ resid @ Kw.T
    k = rf + rg + 1
    zz = np.empty((k, k))
    zz[:rf, :rf], zz[:rf, rf:-1], zz[:rf, -1] = r_hh, hw, hsum
    zz[rf:-1, :rf], zz[rf:-1, rf:-1], zz[rf:-1, -1] = hw.T, ww, w1
    zz[-1, :rf], zz[-1, rf:-1], zz[-1, -1] = hsum, w1, N
    xz = np.column_stack([xh, xw, s])
    B = _solve_affine(xz, zz)
    new_sigma = np.maximum((np.diag(stats.scatter) - np.einsum("ij,ij->i", B, xz)) / N, floor)
    # parameter expansion for h (per class) and w (per vector), as in _expand_class_factor
    mu, F = _expand_class_factor(B[:, -1], B[:, :rf], post)
    w0 = w1 / N
    s_ww = ww / N - np.outer(w0, w0)
    G = B[:, rf:-1]
    mu = mu + G @ w0
    G = G @ cholesky(0.5 * (s_ww + s_ww.T), "posterior covariance of w")
    return mu, F, G, new_sigma


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------


def scoring_basis(F: np.ndarray, W: np.ndarray, rtol: float = 1e-13):
    """Projection ``P`` (D, r') and eigenvalues ``lam`` (r',) such that ``u = (x - mu) @ P`` are the
    coordinates of ``F^T W^-1 (x - mu)`` in the eigenbasis of ``F^T W^-1 F``.

    Directions with a zero eigenvalue carry no information about the class and are dropped.
    """
    L, Ft, lam, V = _whitened_factor(F, W, "within-class covariance W")
    xp = _xp.namespace(F, W)
    if not _xp.is_numpy(xp):
        top = max(float(xp.max(lam)) if lam.shape[0] else 0.0, np.finfo(float).tiny)
        keep = _xp.to_host_index(xp.nonzero(lam > rtol * top)[0])
        lam, V = _xp.take_index(lam, keep, 0, xp), _xp.take_index(V, keep, 1, xp)
        P = _xp.solve_triangular(L, Ft @ V, xp, lower=True, trans=True)
        return P, lam
    keep = lam > rtol * max(lam.max(initial=0.0), np.finfo(float).tiny)
    lam, V = lam[keep], V[:, keep]
    P = linalg.solve_triangular(L, Ft @ V, lower=True, trans="T", check_finite=False)
    return P, lam


def _model_side(u, counts, c, lam):
    """Model-side quantities against probes of ``c`` vectors: the group (unique count) of every
    model, ``a = 1 / (1 + (n + c) lam)`` per group and the model-only term of every model."""
    uniq, group = np.unique(counts, return_inverse=True)
    a = 1.0 / (1.0 + (uniq[:, None] + c) * lam)  # gamma of the pooled set, per count
    g_n = 1.0 / (1.0 + uniq[:, None] * lam)
    logs = 0.5 * (np.log1p((uniq[:, None] + c) * lam) - np.log1p(uniq[:, None] * lam)
                  - np.log1p(c * lam)).sum(axis=1)
    const = 0.5 * np.einsum("ij,ij->i", u * u, (a - g_n)[group]) - logs[group]
    return group, a, const


def llr_matrix(uE, nE, uP, nP, lam, out, block_rows: int, written=None) -> np.ndarray:
    """LLR of every model (rows) against every probe (columns) written into ``out`` (M, P).

    ``uE`` (M, r) and ``uP`` (P, r) are *sums* of projected vectors, ``nE``/``nP`` their counts.
    With ``Q(n, u) = u^T diag(1/(1+n lam)) u / 2 - sum log(1 + n lam) / 2``,
    ``LLR = Q(n_E + n_P, u_E + u_P) - Q(n_E, u_E) - Q(n_P, u_P)``, which splits into a cross term
    ``u_E diag(a) u_P^T``, a model-only and a probe-only term.  All three are folded into one
    matrix product ``[u_E a, const, ...] @ [u_P, 1, ...]^T`` per probe count, computed in blocks of
    ``block_rows`` models written straight into ``out``.  An effective rank ``r = 0`` (no
    between-class direction) gives LLR = 0 everywhere.  ``written(rows, cols)``, when given, is
    called after each block is written (``cols`` None: all columns), while it is still in cache.
    """
    M, r = uE.shape
    if r == 0:  # F carries no direction: same- and different-class hypotheses are the same model
        out[...] = 0.0
        return out
    xp = _xp.namespace(uE, uP, lam)
    if not _xp.is_numpy(xp):
        return _llr_matrix_xp(xp, uE, nE, uP, nP, lam, out, block_rows, written)
    direct = out.dtype == np.float64 and out.flags.c_contiguous
    for c in np.unique(nP):
        cols = np.flatnonzero(nP == c)
        all_cols = len(cols) == uP.shape[0]
        up = uP[cols]
        group, a, const = _model_side(uE, nE, float(c), lam)
        g_c = 1.0 / (1.0 + c * lam)
        G = a.shape[0]
        if G <= r:
            probe = 0.5 * (up * up) @ (a - g_c).T  # (Pc, G): probe-only term per model count
        if G == 1:  # every model has the same count: the probe-only term is one column
            left = np.column_stack([uE * a[0], const, np.ones(M)])
            right = np.column_stack([up, np.ones(len(cols)), probe[:, 0]])
        elif G <= r:
            onehot = np.zeros((M, G))
            onehot[np.arange(M), group] = 1.0
            left = np.column_stack([uE * a[group], const, onehot])
            right = np.column_stack([up, np.ones(len(cols)), probe])
        else:
            left = np.column_stack([uE * a[group], const, 0.5 * (a[group] - g_c)])
            right = np.column_stack([up, np.ones(len(cols)), up * up])
        right_t = right.T
        for r0 in range(0, M, block_rows):
            r1 = min(M, r0 + block_rows)
            if direct and all_cols:
                np.matmul(left[r0:r1], right_t, out=out[r0:r1])
            elif all_cols:
                out[r0:r1] = left[r0:r1] @ right_t
            else:
                out[r0:r1, cols] = left[r0:r1] @ right_t
            if written is not None:
                written(slice(r0, r1), None if all_cols else cols)
    return out


def _llr_matrix_xp(xp, uE, nE, uP, nP, lam, out, block_rows, written=None):
    """:func:`llr_matrix` in any array namespace (same algebra): the counts and their groups are
    worked out on the host (small vectors), the products run where ``uE``/``uP`` live, and each
    block of rows comes back into the host array ``out`` (numpy, e.g. a memmap)."""
    from .._backend._device import to_numpy

    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array (scores come back to the host); got "
                        f"{type(out).__name__}")
    M, r = uE.shape
    dtype = uE.dtype
    nE_host, nP_host = to_numpy(nE), to_numpy(nP)
    uniq, group = np.unique(nE_host, return_inverse=True)
    G = len(uniq)
    n_u = _xp.asarray_like(uniq, uE, xp, dtype=dtype)[:, None]  # (G, 1)
    lam = lam[None, :]
    g_n = 1.0 / (1.0 + n_u * lam)
    ones_m = xp.ones((M, 1), dtype=dtype, device=_xp.device_of(uE))
    for c in np.unique(nP_host):
        c = float(c)
        cols = np.flatnonzero(nP_host == c)
        all_cols = len(cols) == uP.shape[0]
        up = uP if all_cols else _xp.take_index(uP, cols, 0, xp)
        ones_p = xp.ones((up.shape[0], 1), dtype=dtype, device=_xp.device_of(uE))
        a = 1.0 / (1.0 + (n_u + c) * lam)  # (G, r)
        logs = 0.5 * xp.sum(xp.log1p((n_u + c) * lam) - xp.log1p(n_u * lam)
                            - xp.log1p(c * lam), axis=1)
        a_m = _xp.take_index(a, group, 0, xp)  # (M, r)
        const = (0.5 * xp.sum(uE * uE * (a_m - _xp.take_index(g_n, group, 0, xp)), axis=1)
                 - _xp.take_index(logs, group, 0, xp))[:, None]
        g_c = 1.0 / (1.0 + c * lam)
        if G <= r:
            probe = 0.5 * ((up * up) @ (a - g_c).T)  # (Pc, G)
        if G == 1:
            left = xp.concat([uE * a, const, ones_m], axis=1)
            right = xp.concat([up, ones_p, probe], axis=1)
        elif G <= r:
            onehot = _xp.asarray_like(group[:, None] == np.arange(G), uE, xp, dtype=dtype)
            left = xp.concat([a_m * uE, const, onehot], axis=1)
            right = xp.concat([up, ones_p, probe], axis=1)
        else:
            left = xp.concat([uE * a_m, const, 0.5 * (a_m - g_c)], axis=1)
            right = xp.concat([up, ones_p, up * up], axis=1)
        right_t = right.T
        for r0 in range(0, M, block_rows):
            r1 = min(M, r0 + block_rows)
            block = to_numpy(left[r0:r1, :] @ right_t, dtype=None)
            if all_cols:
                out[r0:r1] = block
            else:
                out[r0:r1, cols] = block
            if written is not None:
                written(slice(r0, r1), None if all_cols else cols)
    return out
