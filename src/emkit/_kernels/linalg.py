"""Batched dense linear algebra on stacks of small matrices (S, n, n): triangular inverses and
solves (numpy has no stacked triangular solve), and symmetric positive definite solves through
Cholesky factors.  Shared by the ISV/JFA and i-vector kernels; never an explicit ``inv``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf
from scipy.linalg.lapack import dpotrs as _potrs

#: Diagonal blocks of at most this many rows end the recursion (solved by substitution).
_LEAF = 32

#: Up to this many matrices, :func:`spd_solve` calls LAPACK once per matrix (measured faster than
#: the stacked path up to about a hundred 20x20 or 50x50 matrices: its set-up costs dominate).
_FEW = 64


def lower_inverse(L: np.ndarray) -> np.ndarray:
    """Inverse of each lower-triangular matrix of the stack ``L`` (S, n, n)."""
    out = np.empty(L.shape)
    _lower_inverse_into(L, out)
    return out


def _lower_inverse_into(L, out):
    n = L.shape[-1]
    if n <= _LEAF:
        # forward substitution: row i of L^-1 is (e_i - L[i, :i] @ X[:i]) / L[i, i]
        inv_diag = 1.0 / np.diagonal(L, axis1=-2, axis2=-1)
        for i in range(n):
            row = out[:, i, : i + 1]
            if i:
                np.matmul(L[:, i : i + 1, :i], out[:, :i, : i + 1], out=row[:, None, :])
                np.negative(row, out=row)
            else:
                row[...] = 0.0
            row[:, i] += 1.0
            row *= inv_diag[:, i, None]
            out[:, i, i + 1 :] = 0.0
        return
    h = n // 2
    out[:, :h, h:] = 0.0
    _lower_inverse_into(L[:, :h, :h], out[:, :h, :h])
    _lower_inverse_into(L[:, h:, h:], out[:, h:, h:])
    # [[A, 0], [B, E]]^-1 = [[A^-1, 0], [-E^-1 B A^-1, E^-1]]
    np.matmul(out[:, h:, h:], L[:, h:, :h] @ out[:, :h, :h], out=out[:, h:, :h])
    np.negative(out[:, h:, :h], out=out[:, h:, :h])


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_s X_s = B_s`` for each lower-triangular ``L_s``; L (S, n, n), B (S, n, k)."""
    X = np.array(B, dtype=np.float64, copy=True)
    _solve_lower_inplace(L, X)
    return X


def _solve_lower_inplace(L, X):
    n = L.shape[-1]
    if n <= _LEAF:  # forward substitution
        diag = np.diagonal(L, axis1=-2, axis2=-1)
        for i in range(n):
            if i:
                X[:, i] -= (L[:, i : i + 1, :i] @ X[:, :i])[:, 0]
            X[:, i] /= diag[:, i, None]
        return
    h = n // 2
    _solve_lower_inplace(L[:, :h, :h], X[:, :h])
    X[:, h:] -= L[:, h:, :h] @ X[:, :h]
    _solve_lower_inplace(L[:, h:, h:], X[:, h:])


def solve_upper(U: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``U_s X_s = B_s`` for each upper-triangular ``U_s``; U (S, n, n), B (S, n, k)."""
    X = np.array(B, dtype=np.float64, copy=True)
    _solve_upper_inplace(U, X)
    return X


def _solve_upper_inplace(U, X):
    n = U.shape[-1]
    if n <= _LEAF:  # back substitution
        diag = np.diagonal(U, axis1=-2, axis2=-1)
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                X[:, i] -= (U[:, i : i + 1, i + 1 :] @ X[:, i + 1 :])[:, 0]
            X[:, i] /= diag[:, i, None]
        return
    h = n // 2
    _solve_upper_inplace(U[:, h:, h:], X[:, h:])
    X[:, :h] -= U[:, :h, h:] @ X[:, h:]
    _solve_upper_inplace(U[:, :h, :h], X[:, :h])


def cholesky_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``A_s X_s = B_s`` for a stack of symmetric positive definite ``A`` (S, n, n)."""
    L = np.linalg.cholesky(A)
    return solve_upper(np.ascontiguousarray(np.swapaxes(L, -1, -2)), solve_lower(L, B))


def spd_inverse(P: np.ndarray) -> np.ndarray:
    """Inverse of stacked symmetric positive definite matrices (S, r, r) via their Cholesky factors.

    ``P = L L^T`` and ``P^-1 = L^-T L^-1`` (:func:`lower_inverse`): about twice as fast as a stacked
    general solve.
    """
    L_inv = lower_inverse(np.linalg.cholesky(P))
    return np.matmul(L_inv.swapaxes(-1, -2), L_inv)


def spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A^-1 B`` for stacked SPD ``A`` (S, r, r) and ``B`` (S, r, k): Cholesky, then ``L^-T (L^-1 B)``.

    Only the lower triangles of ``A`` are read.  A single ``A`` (r, r) and ``B`` (r,) or (r, k) is
    solved directly.

    A few matrices go straight to LAPACK (``potrf``/``potrs``, a few microseconds each) instead
    of numpy's stacked routines, whose set-up costs tens of microseconds.  Many go through
    :func:`lower_inverse` (numpy has no stacked triangular solve; its LU solve is slower).
    """
    if A.ndim == 2:
        factor, info = _potrf(A, lower=1, clean=0)
        if info == 0:
            out, info = _potrs(factor, B, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        return out
    if A.shape[0] <= _FEW:
        out = np.empty((len(A),) + B.shape[1:])
        for i in range(len(A)):
            factor, info = _potrf(A[i], lower=1, clean=0)
            if info == 0:
                out[i], info = _potrs(factor, B[i], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("Matrix is not positive definite")
        return out
    L_inv = lower_inverse(np.linalg.cholesky(A))
    return np.matmul(L_inv.swapaxes(-1, -2), np.matmul(L_inv, B))


