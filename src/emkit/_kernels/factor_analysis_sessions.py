"""The session posteriors of ISV/JFA training on a block of sessions sorted by class (see
:mod:`emkit._kernels.factor_analysis` for the notation).

Symmetric (r, r) matrices travel as their upper triangles packed row by row, (..., r(r+1)/2): the
layout of :func:`~emkit._kernels.factor_analysis.projection_products` (so the precisions of a block
are one product ``n @ packed``) and of the second-moment accumulator (one product
``n^T @ packed``): half the flops and memory of the full matrices.

Per-class sums and offsets walk the class segments of the sorted sessions with one small product
each (``2 C r`` flops per session, no (S, C, r) temporaries and no sparse matrices).

Namespace-generic: numpy runs stacked Cholesky factors and triangular inverses into reused scratch
arrays; any other namespace the same algebra in the array API standard.
"""

from __future__ import annotations

import numpy as np

from . import _xp
from .factor_analysis_lapack import session_rows, solve_rows_each
from .linalg import _lower_inverse_into
from .packed import scratch as _scratch

__all__ = ["packed_size", "unpack_symmetric", "session_moments", "segment_starts",
           "segment_class_sums", "segment_offset_terms", "solve_rows_each", "LAPACK_RANK"]


def packed_size(r: int) -> int:
    return r * (r + 1) // 2


def _indices(r: int):
    from .factor_analysis import _symmetric_indices

    return _symmetric_indices(r)


def unpack_symmetric(packed, r: int):
    """(..., r(r+1)/2) packed upper triangles to full symmetric (..., r, r) matrices."""
    _, full = _indices(r)
    xp = _xp.namespace(packed)
    values = _xp.take_index(packed, full, packed.ndim - 1, xp)
    return xp.reshape(values, tuple(packed.shape[:-1]) + (r, r))


def _unpack_upper_into(packed, out):
    """Upper triangles of ``out`` (B, r, r) from ``packed`` (B, p), plus the identity (the lower
    triangles are left as they are: the factorisation reads the upper ones)."""
    r = out.shape[-1]
    start = 0
    for i in range(r):  # row slices over the stack: a few times faster than a scatter
        out[:, i, i:] = packed[:, start : start + r - i]
        start += r - i
    out.reshape(len(out), r * r)[:, :: r + 1] += 1.0
    return out


def _pack_upper_into(square, out, x=None):
    """The upper triangles of ``square`` (B, r, r) packed into ``out`` (B, p), plus those of
    ``x x^T`` for x (B, r) when given."""
    r, start = square.shape[-1], 0
    for i in range(r):
        row = out[:, start : start + r - i]
        if x is None:
            row[...] = square[:, i, i:]
        else:
            np.multiply(x[:, i, None], x[:, i:], out=row)
            row += square[:, i, i:]
        start += r - i
    return out


def session_moments(precision_terms, b, workspace=None, second=True):
    """Posterior of w with prior N(0, I), precision ``P = I + unpack(precision_terms)`` and linear
    term ``b``, for a block of sessions.

    ``precision_terms`` (B, r(r+1)/2) packed, ``b`` (B, r).  Returns ``x = P^-1 b`` (B, r) and,
    with ``second``, the packed second moments ``P^-1 + x x^T`` (B, r(r+1)/2) (else None).
    ``workspace`` (a dict, numpy only) keeps the scratch stacks from call to call: its arrays
    are overwritten by the next call, the returned packed moments included.  Raises
    ``numpy.linalg.LinAlgError`` when a precision is not positive definite.
    """
    B, r = b.shape
    xp = _xp.namespace(precision_terms, b)
    if not _xp.is_numpy(xp):
        from .factor_analysis import spd_inverse

        eye = xp.eye(r, dtype=b.dtype, device=_xp.device_of(b))
        cov = spd_inverse(unpack_symmetric(precision_terms, r) + eye)
        x = (cov @ b[:, :, None])[:, :, 0]
        if not second:
            return x, None
        packed, _ = _indices(r)
        ww = xp.reshape(cov + x[:, :, None] * x[:, None, :], (B, r * r))
        return x, _xp.take_index(ww, packed, 1, xp)
    if r >= LAPACK_RANK:  # one session at a time, without the GIL
        x = np.empty((B, r))
        packed = _scratch(workspace, "packed", (B, packed_size(r))) if second else None
        session_rows(precision_terms, b, x, packed, _scratch(workspace, "buffer", (r, r)))
        return x, packed
    P = _unpack_upper_into(precision_terms, _scratch(workspace, "P", (B, r, r)))
    x = _stacked_moments(P, b, workspace, second)
    if not second:
        return x, None
    # P holds the covariances in its upper triangles (the lower ones are not read)
    return x, _pack_upper_into(P, _scratch(workspace, "packed", (B, packed_size(r))), x)


#: From this rank on, :func:`session_moments` factorises and inverts the precisions one by one
#: with LAPACK (``potrf``, ``potri``: the covariance in r^3 flops, without the GIL:
#: :func:`~emkit._kernels.factor_analysis_lapack.session_rows`); below it, as stacks with
#: numpy's batched Cholesky and a triangular inverse by products (fewer calls, more flops).
LAPACK_RANK = 24


def _stacked_moments(P, b, workspace, second):
    """x (B, r) and, with ``second``, ``P^-1`` in the upper triangles of ``P`` (overwritten), by
    stacked operations (numpy's batched Cholesky, then ``L^-1`` by products; ``P^-1 = L^-T L^-1``)."""
    B, r = b.shape
    L = np.linalg.cholesky(np.swapaxes(P, -1, -2))  # reads the upper triangles of P
    Linv = _scratch(workspace, "Linv", (B, r, r))
    _lower_inverse_into(L, Linv)
    del L
    z = np.matmul(Linv, b[:, :, None])
    x = np.matmul(np.swapaxes(Linv, -1, -2), z)[:, :, 0]
    if second:
        np.matmul(np.swapaxes(Linv, -1, -2), Linv, out=P)
    return x


def segment_starts(local) -> np.ndarray:
    """Boundaries (J + 1,) of the runs of equal values in the sorted class positions ``local``
    (0..J-1, each present), as a numpy integer array."""
    local = _xp.to_host_index(local)
    if len(local) == 0:
        return np.zeros(1, dtype=np.intp)
    cuts = np.flatnonzero(local[1:] != local[:-1]) + 1
    return np.concatenate([[0], cuts, [len(local)]]).astype(np.intp)


def segment_class_sums(starts, n, x):
    """``G[j, c] = sum_{s in segment j} n_sc x_s``: (J, C, r), one product per segment."""
    J, C, r = len(starts) - 1, n.shape[1], x.shape[1]
    xp = _xp.namespace(n, x)
    if not _xp.is_numpy(xp):
        return xp.stack([n[starts[j]:starts[j + 1], :].T @ x[starts[j]:starts[j + 1], :]
                         for j in range(J)]) if J else xp.zeros((0, C, r), dtype=x.dtype,
                                                               device=_xp.device_of(x))
    G = np.empty((J, C, r))
    for j in range(J):
        a, e = starts[j], starts[j + 1]
        np.matmul(n[a:e].T, x[a:e], out=G[j])
    return G


def segment_offset_terms(starts, n, Q, classes):
    """``out[s] = sum_c n_sc Q[classes[j], c]`` for the sessions s of segment j: (B, r) from the
    per-class projections ``Q`` (K, C, r) (:func:`~emkit._kernels.factor_analysis.block_projections`)
    and the class index ``classes`` (J,) of every segment."""
    xp = _xp.namespace(n, Q)
    classes = _xp.to_host_index(classes)
    if not _xp.is_numpy(xp):
        parts = [n[starts[j]:starts[j + 1], :] @ Q[int(classes[j]), ...]
                 for j in range(len(starts) - 1)]
        return (xp.concat(parts, axis=0) if parts
                else xp.zeros((0, Q.shape[2]), dtype=Q.dtype, device=_xp.device_of(Q)))
    out = np.empty((n.shape[0], Q.shape[2]))
    for j in range(len(starts) - 1):
        a, e = starts[j], starts[j + 1]
        np.matmul(n[a:e], Q[classes[j]], out=out[a:e])
    return out
