"""Symmetric matrices stored as packed lower triangles, and per-matrix LAPACK on them.

A symmetric (R, R) matrix is packed as its lower triangle, row by row: R(R+1)/2 numbers (row i
holds columns 0..i).  Those are the numbers of the *upper* triangle of the same matrix stored
column-major, so a C-ordered (R, R) buffer whose lower triangle is filled is, seen through its
transpose (a Fortran-ordered view, no copy), an upper-triangle argument for LAPACK: ``dpotrf``,
``dpotri`` and BLAS ``dsyr`` work in place on it.  Used by the i-vector E-step, where a stacked
recursion over (S, R, R) stacks costs four (R, R) matrices per utterance and runs at a fraction
of the BLAS rate; one (R, R) buffer per thread, reused, is all this needs.

The calls go to scipy's LAPACK/BLAS, which release the GIL: callers run them on their threads,
with BLAS limited to one thread (``emkit._backend.small_products``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg.blas import dgemm as _dgemm
from scipy.linalg.blas import dsyr as _dsyr
from scipy.linalg.blas import dtrmm as _trmm
from scipy.linalg.lapack import dlauum as _lauum
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs
from scipy.linalg.lapack import dtrtri as _trtri

#: :func:`upper_inverse` hands blocks of at most this many rows to LAPACK's ``dtrtri``, which is
#: about half as fast as the recursion's ``dtrmm`` products at R = 400 (measured, OpenBLAS).
TRTRI_LEAF = 100


@lru_cache(maxsize=8)
def lower_index(R: int) -> np.ndarray:
    """Flat indices into an (R, R) C-ordered matrix of its lower triangle, row by row."""
    i, j = np.tril_indices(R)
    index = i * R + j
    index.setflags(write=False)
    return index


@lru_cache(maxsize=8)
def symmetric_index(R: int) -> np.ndarray:
    """For each entry of an (R, R) matrix (flat, C order), its position in the packed triangle."""
    i, j = np.indices((R, R))
    hi, lo = np.maximum(i, j), np.minimum(i, j)
    index = (hi * (hi + 1) // 2 + lo).reshape(-1)
    index.setflags(write=False)
    return index


def upper_inverse(U: np.ndarray) -> None:
    """Invert the upper-triangular Fortran-ordered ``U`` (n, n) in place (its strict lower part
    is not read).  ``[[A, B], [0, D]]^-1 = [[A^-1, -A^-1 B D^-1], [0, D^-1]]``, recursively."""
    n = U.shape[0]
    if n <= TRTRI_LEAF:
        inverse, info = _trtri(U, lower=0, overwrite_c=1)
        if not np.shares_memory(inverse, U):  # a block of a larger matrix: copied in and out
            U[...] = inverse
        return
    h = n // 2
    upper_inverse(U[:h, :h])
    upper_inverse(U[h:, h:])
    B = _trmm(-1.0, U[:h, :h], U[:h, h:], lower=0)
    U[:h, h:] = _trmm(1.0, U[h:, h:], B, lower=0, side=1)


class NotPositiveDefinite(ValueError):
    """A matrix given to :func:`posterior_rows` is not positive definite."""


def posterior_rows(packed: np.ndarray, b: np.ndarray, w: np.ndarray, half_bw_logdet: np.ndarray,
                   buffer: np.ndarray) -> None:
    """Posterior moments of a latent factor with precision ``I + packed[s]`` and linear term
    ``b[s]``, in place: ``packed`` (S, R(R+1)/2) is overwritten with the packed ``P^-1 + w w'``.

    ``w`` (S, R) receives ``P^-1 b`` and ``half_bw_logdet`` (S,) ``b'w / 2 - log|P| / 2``;
    ``buffer`` is an (R, R) C-ordered scratch array.  Per matrix: ``dpotrf`` (P = U'U), ``dpotrs``
    (w), :func:`upper_inverse` and ``dlauum`` (P^-1 = U^-1 U^-T, what ``dpotri`` does, with a
    faster triangular inverse), ``dsyr`` (+ w w'): R^3 flops (R^3/3 for each of potrf, the
    inverse and lauum), the LAPACK minimum.
    Raises :class:`NotPositiveDefinite`.
    """
    R = buffer.shape[0]
    index = lower_index(R)
    flat, upper = buffer.reshape(-1), buffer.T  # buffer's lower triangle = upper of its transpose
    for s in range(packed.shape[0]):
        np.put(flat, index, packed[s])
        flat[:: R + 1] += 1.0
        factor, info = _potrf(upper, lower=0, overwrite_a=1, clean=0)
        if info != 0:
            raise NotPositiveDefinite(f"matrix {s} is not positive definite (potrf info {info})")
        log_det = 2.0 * np.log(np.diagonal(factor)).sum()
        ws, info = _potrs(factor, b[s], lower=0)
        upper_inverse(factor)
        inverse, info = _lauum(factor, lower=0, overwrite_c=1)
        inverse = _dsyr(1.0, ws, lower=0, a=inverse, overwrite_a=1)
        if not np.shares_memory(inverse, buffer):  # pragma: no cover
            raise RuntimeError("LAPACK did not work in place")
        np.take(flat, index, out=packed[s])
        w[s] = ws
        half_bw_logdet[s] = 0.5 * (b[s] @ ws) - 0.5 * log_det


def gemm_add(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out += a @ b`` by BLAS with beta = 1: no temporary, no extra pass over ``out``.

    ``out`` (m, k) C-contiguous; ``a`` (m, s) and ``b`` (s, k) any layout (copied to the order BLAS
    needs only when they are not contiguous either way; they are the small operands here).
    """
    # C-ordered out is Fortran-ordered out.T = b.T @ a.T + out.T
    x, trans_x = (b.T, 0) if b.flags.c_contiguous else (np.asfortranarray(b), 1)
    y, trans_y = (a.T, 0) if a.flags.c_contiguous else (np.asfortranarray(a), 1)
    result = _dgemm(1.0, x, y, beta=1.0, c=out.T, trans_a=trans_x, trans_b=trans_y,
                    overwrite_c=1)
    if not np.shares_memory(result, out):  # pragma: no cover - f2py copied a contiguous array
        out[...] = result.T


def scratch(workspace, key, shape) -> np.ndarray:
    """An uninitialised float64 array of ``shape``: a view of ``workspace[key]`` (a flat buffer kept
    from batch to batch, grown when too small) or a new array without a workspace.  Reusing the
    buffers matters: a fresh large array is faulted in page by page by the kernel (at R=400 this
    was a third of the E-step's time, as system time)."""
    size = int(np.prod(shape))
    if workspace is None:
        return np.empty(shape)
    buf = workspace.get(key)
    if buf is None or buf.size < size:
        buf = workspace[key] = np.empty(size)
    return buf[:size].reshape(shape)
