"""The U update of ISV/JFA training and ISV's class-level arrays, Gaussian by Gaussian.

Everything here is independent from one Gaussian to the next (the class offsets ``D z_k`` and
``V y_k`` of Gaussian c, its accumulator rows, the solve ``U_c = A2_c A1_c^-1``), so it runs on
slices of Gaussians spread over threads (one BLAS thread each): the numbers do not depend on the
number of threads.  Class-level arrays are in the (C, D, K) layout of
:func:`emkit._kernels.factor_analysis.gaussian_major`.
"""

from __future__ import annotations

import numpy as np

from .._backend import thread_map
from .._kernels import factor_analysis as kfa
from ._blocks import split

#: Slices of Gaussians (fixed: the batched routines' choices depend on the slice sizes, so the
#: numbers depend on the slicing at the last bit; a thread slowed down takes fewer slices).
SLICES = 16


def by_gaussians(fn, C: int, threads: int) -> list:
    """``[fn(slice) for slice in slices of range(C)]`` on ``threads`` threads, in order."""
    return list(thread_map(fn, split(C, SLICES), threads))


def isv_class_level(totals, m, D_diag, var, shape, threads):
    """ISV's fixed class-level arrays: ``centred = F_k - N_k m`` and the gain of
    :func:`~emkit._kernels.factor_analysis.diagonal_gain` (D z_k = gain * (centred_k - sum_{h in k}
    N_h U x_h)), both (C, D, K)."""
    C, D = shape
    K = totals.n.shape[0]
    F = totals.F.reshape(K, C, D)
    centred = np.empty((C, D, K))
    gain = np.empty((C, D, K))

    def fill(gs):
        N = totals.n[:, gs].T[:, None, :]  # (c, 1, K)
        np.copyto(centred[gs], F[:, gs, :].transpose(1, 2, 0))
        centred[gs] -= N * m.reshape(C, D, 1)[gs]
        gain[gs] = kfa.diagonal_gain(N, D_diag.reshape(C, D, 1)[gs], var.reshape(C, D, 1)[gs])

    by_gaussians(fill, C, threads)
    return centred, gain


def class_projections(offsets, U_over_var, shape, threads):
    """``Q[k, c] = U_c^T Sigma_c^-1 o_kc`` (K, C, r) from the class offsets ``o`` (C, D, K) (see
    :func:`~emkit._kernels.factor_analysis.block_projections`)."""
    C, D = shape
    r = U_over_var.shape[1]
    W3 = U_over_var.reshape(C, D, r)
    Q = np.empty((offsets.shape[2], C, r))

    def fill(gs):
        np.matmul(offsets[gs].transpose(0, 2, 1), W3[gs], out=Q[:, gs].transpose(1, 0, 2))

    by_gaussians(fill, C, threads)
    return Q


def u_update(c, acc, threads, class_offsets=None, isv=None, W=None, g=None):
    """New U (CD, r) from a :class:`~._estep.SessionAccumulator`: ``U_c = A2_c A1_c^-1`` with
    ``A2 = sum_h (F_h - N_h (m + o_k)) x_h^T`` (see :func:`._training.u_accumulator`).

    The class offsets ``o_k`` are ``class_offsets`` (C, D, K) (JFA: V y_k), or for ISV
    (``isv = (centred, gain, buffer)``, all (C, D, K)) ``D z_k = gain * (centred - sum_{h in k}
    N_h U x_h)``, written into ``buffer``; None: no offsets.  ``W``: the subspace updated, when
    not U (JFA's V, with ``acc`` a pass over the classes); ``g``: ``sum_h N_h x_h`` (C, r) when
    ``acc`` has no class sums G (then without class offsets).
    """
    (C, D), U = c.shape, (c.U if W is None else W)
    r = U.shape[1]
    U3 = U.reshape(C, D, r)
    out = np.empty((C * D, r))

    def update(gs):
        rows = slice(gs.start * D, gs.stop * D)
        A2 = np.array(acc.A2F[rows], order="C").reshape(-1, D, r)  # a copy
        gg = acc.G[:, gs].sum(axis=0) if g is None else g[gs]  # sum_h N_h x_h, (c, r)
        A2 -= c.means[gs, :, None] * gg[:, None, :]
        offsets = class_offsets[gs] if class_offsets is not None else None
        Gc = None if acc.G is None else acc.G[:, gs, :].transpose(1, 0, 2)  # (c, K, r)
        if isv is not None:
            centred, gain, buffer = isv
            offsets = np.matmul(U3[gs], Gc.transpose(0, 2, 1), out=buffer[gs])  # sum N_h U x_h
            np.subtract(centred[gs], offsets, out=offsets)
            offsets *= gain[gs]  # D z_k
        if offsets is not None:
            A2 -= np.matmul(offsets, Gc)
        out[rows] = kfa.update_subspace(acc.A1[gs], A2.reshape(-1, r), U[rows])  # A1 may be packed

    by_gaussians(update, C, threads)
    return out


def jfa_d_terms(totals, m, Vy, U, G, shape, threads):
    """JFA's D phase inputs: ``centred = F_k - N_k (m + V y_k) - sum_{h in k} N_h U x_h`` and
    ``N_k`` per Gaussian, (C, D, K) and (C, 1, K), from the class offsets ``Vy`` (C, D, K) and
    ``G`` (K, C, r_U) of the final x."""
    C, D = shape
    K, r = totals.n.shape[0], U.shape[1]
    F = totals.F.reshape(K, C, D)
    N = np.ascontiguousarray(totals.n.T)[:, None, :]
    U3 = U.reshape(C, D, r)
    centred = np.empty((C, D, K))

    def fill(gs):
        np.copyto(centred[gs], F[:, gs, :].transpose(1, 2, 0))
        centred[gs] -= N[gs] * (m.reshape(C, D, 1)[gs] + Vy[gs])
        centred[gs] -= np.matmul(U3[gs], G[:, gs, :].transpose(1, 2, 0))

    by_gaussians(fill, C, threads)
    return centred, N


def d_update(centred, N, D_diag, var, threads):
    """JFA's D update ``D = sum_k centred_k z_k / sum_k N_k (L_D,k + z_k^2)`` (CD,) with the z
    posterior of :func:`~emkit._kernels.factor_analysis.diagonal_posterior`; a coordinate that
    no statistic reached keeps its value."""
    C, D, _ = centred.shape
    D3, var3 = D_diag.reshape(C, D, 1), var.reshape(C, D, 1)

    def update(gs):
        z, cov = kfa.diagonal_posterior(N[gs], centred[gs], D3[gs], var3[gs])
        A2 = np.einsum("cdk,cdk->cd", centred[gs], z)
        cov += z * z  # in place: (c, D, K) arrays
        cov *= N[gs]
        A1 = cov.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(A1 != 0, A2 / A1, D3[gs, :, 0]).ravel()

    return np.concatenate(by_gaussians(update, C, threads))
