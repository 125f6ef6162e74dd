"""Session-to-class sums of ISV/JFA on stacked arrays: per-class totals, the sparse session/class
weight matrix and the products through it (see :mod:`emkit._kernels.factor_analysis` for the
notation).

Namespace-generic like the rest of the kernels: numpy uses ``scipy.sparse`` indicator matrices,
any other array-API namespace a dense fallback with (S, C, r) temporaries.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse as _sparse

from . import _xp

__all__ = [
    "group_sum",
    "class_weights",
    "class_weighted_sums",
    "slot_class_sums",
    "class_offset_terms",
    "block_projections",
]


def group_sum(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[k] = sum_{s: codes_s = k} values[s]``: (K, ...), rows of a group added in input order.

    One product with a sparse (K, S) indicator matrix (much faster than ``np.add.at`` or a
    ``reduceat`` over rows).
    """
    xp = _xp.namespace(codes, values)
    if not _xp.is_numpy(xp):
        if values.shape[0] == 0:
            return xp.zeros((n_groups,) + tuple(values.shape[1:]), dtype=values.dtype,
                            device=_xp.device_of(values))
        return _xp.segment_sum(codes, values, n_groups, xp)
    S = len(codes)
    if S == 0:
        return np.zeros((n_groups,) + values.shape[1:])
    indicator = _sparse.csr_array((np.ones(S), (codes, np.arange(S))), shape=(n_groups, S))
    return np.asarray(indicator @ values.reshape(S, -1)).reshape((n_groups,) + values.shape[1:])


def class_weights(codes: np.ndarray, n: np.ndarray, n_classes: int):
    """Sparse (S, K*C) matrix ``M`` with ``M[s, k*C + c] = n_sc`` if ``codes_s = k`` (else 0).

    It moves per-session quantities to per-class-and-Gaussian ones and back in O(S C r):
    ``(M^T x)[(k, c)] = sum_{s in k} n_sc x_s`` (:func:`class_weighted_sums`) and
    ``(M Q)[s] = sum_c n_sc Q[k(s), c]`` (:func:`class_offset_terms`), without the (S, C, r)
    temporaries of a dense formulation.
    """
    S, C = n.shape
    if not _xp.is_numpy(_xp.namespace(codes, n)):
        return _ClassWeights(codes, n, n_classes)
    columns = codes[:, None] * C + np.arange(C)
    return _sparse.csr_array(
        (np.ravel(n), columns.ravel(), np.arange(0, S * C + 1, C)), shape=(S, n_classes * C)
    )


class _ClassWeights:
    """:func:`class_weights` outside numpy (no sparse matrices in the array API standard): the
    codes and occupancies themselves; the products build (S, C, r) temporaries instead."""

    def __init__(self, codes, n, n_classes):
        self.codes, self.n, self.n_classes = codes, n, n_classes


def class_weighted_sums(
    codes: np.ndarray, n: np.ndarray, mean: np.ndarray, n_classes: int, weights=None
) -> np.ndarray:
    """``G[k, c] = sum_{s: codes_s = k} n_sc mean_s``: (K, C, r).

    ``weights`` is :func:`class_weights` of ``(codes, n, n_classes)`` when already built.
    """
    if weights is None:
        weights = class_weights(codes, n, n_classes)
    if isinstance(weights, _ClassWeights):
        xp = _xp.namespace(n, mean)
        return _xp.segment_sum(weights.codes, weights.n[:, :, None] * mean[:, None, :],
                               n_classes, xp)
    return np.asarray(weights.T @ mean).reshape(n_classes, n.shape[1], mean.shape[1])


def slot_class_sums(local: np.ndarray, n: np.ndarray, mean: np.ndarray, n_local: int) -> np.ndarray:
    """``out[j, c] = sum_{s: local_s = j} n_sc mean_s``: (J, C, r), as :func:`class_weighted_sums`.

    One dense product of ``n^T`` with the means spread into per-class slots (S, J*r): C*S*J*r
    operations, cheaper than the sparse product when the sessions belong to few classes (J << S),
    and a BLAS call (it runs in parallel threads).
    """
    S, r = mean.shape
    xp = _xp.namespace(local, n, mean)
    if not _xp.is_numpy(xp):
        slot_ids = xp.arange(n_local, device=_xp.device_of(mean))
        onehot = xp.astype(local[:, None] == slot_ids[None, :], mean.dtype)  # (S, J)
        slots = onehot[:, :, None] * mean[:, None, :]
        out = n.T @ xp.reshape(slots, (S, n_local * r))
        return xp.permute_dims(xp.reshape(out, (-1, n_local, r)), (1, 0, 2))
    slots = np.zeros((S, n_local, r))
    slots[np.arange(S), local] = mean
    out = n.T @ slots.reshape(S, n_local * r)  # (C, J*r)
    return out.reshape(-1, n_local, r).transpose(1, 0, 2)


def class_offset_terms(weights, projections: np.ndarray) -> np.ndarray:
    """``sum_c n_sc Q[k(s), c]`` for every session: (S, r), from the :func:`class_weights` of the
    sessions and ``Q`` (K, C, r) (e.g. :func:`block_projections` of per-class offsets)."""
    K, C, r = projections.shape
    if isinstance(weights, _ClassWeights):  # (S, 1, C) @ (S, C, r): an (S, C, r) temporary
        xp = _xp.namespace(weights.n, projections)
        Q = _xp.take_index(projections, _xp.to_host_index(weights.codes), 0, xp)
        return (weights.n[:, None, :] @ Q)[:, 0, :]
    return np.asarray(weights @ projections.reshape(K * C, r))


def block_projections(offsets: np.ndarray, W: np.ndarray, n_gaussians: int) -> np.ndarray:
    """``Q[k, c] = sum_d offsets[k, (c, d)] W[(c, d)]``: (K, C, r) from offsets (K, CD), W (CD, r).

    With ``W = Sigma^-1 U`` this is ``U_c^T Sigma_c^-1 o_kc``, so that
    ``U^T Sigma^-1 (N_h o_k) = sum_c n_hc Q[k, c]`` (:func:`class_offset_terms`).
    """
    C = n_gaussians
    K = offsets.shape[0]
    r = W.shape[1]
    xp = _xp.namespace(offsets, W)
    O = xp.permute_dims(xp.reshape(offsets, (K, C, -1)), (1, 0, 2))
    out = xp.matmul(O, xp.reshape(W, (C, -1, r)))  # (C, K, r)
    return xp.permute_dims(out, (1, 0, 2))
