"""Per-matrix LAPACK of ISV/JFA training without the GIL: the session posteriors and the
per-Gaussian solves of the subspace update.

The routines are scipy's LAPACK/BLAS called through ``ctypes`` on the pointers of
``scipy.linalg.cython_lapack``/``cython_blas`` (:func:`emkit._kernels.packed._nogil`): scipy's
f2py wrappers hold the GIL for the whole call, so the two threads of an E-step calling them ran
one at a time.  Callers run these on their threads with BLAS limited to one thread.

Layouts: a symmetric (r, r) matrix packed as its upper triangle row by row (the layout of
:mod:`emkit._kernels.factor_analysis_sessions`) holds the same numbers, in the same order, as
LAPACK's packed *lower* triangle (column by column) of that matrix, so ``dtpttr``/``dtrttp``
with ``uplo = 'L'`` move it to and from a Fortran-ordered (r, r) buffer (a C-ordered buffer seen
through its transpose; no copy).
"""

from __future__ import annotations

import ctypes

import numpy as np
import scipy.linalg.cython_blas as _cython_blas
import scipy.linalg.cython_lapack as _cython_lapack

from .packed import _at, _c, _d, _dpotrf, _dpotrs, _dsyr, _dtpttr, _dtrttp, _i, _nogil

_dpotri = _nogil(_cython_lapack, "dpotri", 5)
_dsymv = _nogil(_cython_blas, "dsymv", 10)


def _not_spd(what: str, index: int, info: int):
    return np.linalg.LinAlgError(f"Matrix is not positive definite ({what} {index}: potrf info "
                                 f"{info})")


def session_rows(terms: np.ndarray, b: np.ndarray, x: np.ndarray, packed: np.ndarray | None,
                 buffer: np.ndarray) -> None:
    """Posterior of w with prior N(0, I), precision ``P = I + terms[s]`` (packed upper triangle,
    row by row) and linear term ``b[s]``, session by session.

    ``terms`` (B, >= p) rows whose first p = r(r+1)/2 entries are the packed terms (a row may be
    longer: only its start is read, so column slices of a wider C-ordered array work without a
    copy; unit stride along a row); ``b`` (B, r); ``x`` (B, r) receives ``P^-1 b``;
    ``packed`` (B, p) C-ordered, when given, receives the packed ``P^-1 + x x^T``; ``buffer`` an
    (r, r) C-ordered scratch array.  Per session: ``dpotrf``, then ``dpotrs`` (x) or, with
    ``packed`` ``dpotri`` (the covariance, in place), ``dsymv`` (x) and ``dsyr`` (+ x x^T).
    Raises ``numpy.linalg.LinAlgError`` when a precision is not positive definite.
    """
    B, r = b.shape
    p = r * (r + 1) // 2
    if terms.dtype != np.float64 or terms.strides[1] != 8:
        terms = np.ascontiguousarray(terms, dtype=np.float64)
    if packed is not None and not packed.flags.c_contiguous:  # pragma: no cover - scratch rows
        raise ValueError("session_rows needs a C-contiguous packed output")
    flat, bs, ws = buffer.reshape(-1), np.empty(r), np.empty(r)
    # the arguments built once: at r = 100, building them per call cost about a tenth of a session
    info = ctypes.c_int(0)
    status, n, one, lo, unit, zero = ctypes.byref(info), _i(r), _i(1), _c(b"L"), _d(1.0), _d(0.0)
    a, b_ptr, w_ptr = _at(buffer), _at(bs), _at(ws)
    terms_at, row_bytes = terms.ctypes.data, terms.strides[0]
    packed_at = None if packed is None else packed.ctypes.data
    for s in range(B):
        _dtpttr(lo, n, ctypes.c_void_p(terms_at + s * row_bytes), a, n, status)
        flat[:: r + 1] += 1.0
        _dpotrf(lo, n, a, n, status)
        if info.value != 0:
            raise _not_spd("session", s, info.value)
        bs[:] = b[s]
        if packed is None:
            _dpotrs(lo, n, one, a, n, b_ptr, n, status)
            x[s] = bs
            continue
        _dpotri(lo, n, a, n, status)
        _dsymv(lo, n, unit, a, n, b_ptr, one, zero, w_ptr, one)
        x[s] = ws
        _dsyr(lo, n, unit, w_ptr, one, a, n)
        _dtrttp(lo, n, a, n, ctypes.c_void_p(packed_at + 8 * s * p), status)


def solve_rows_each(A: np.ndarray, Bt: np.ndarray) -> np.ndarray:
    """``X_c = Bt_c A_c^-1`` for SPD ``A`` and ``Bt`` (C, D, r), one Cholesky factorisation and
    solve per matrix: (C, D, r).  ``A`` is (C, r, r), of which only the lower triangles are read,
    or (C, r(r+1)/2), the packed upper triangles (row by row).
    Raises ``numpy.linalg.LinAlgError`` when an ``A_c`` is not positive definite."""
    C, D, r = Bt.shape
    out = np.array(Bt, dtype=np.float64, order="C", copy=True)
    packed = A.ndim == 2
    if packed:
        A = np.ascontiguousarray(A, dtype=np.float64)
    factor = np.empty((r, r))
    info = ctypes.c_int(0)
    status, n, n_rhs = ctypes.byref(info), _i(r), _i(D)
    # the Fortran view of the C-ordered factor: its lower triangle for packed rows (dtpttr),
    # else its upper one (= the lower triangle of A_c, copied)
    uplo, a, p = _c(b"L" if packed else b"U"), _at(factor), r * (r + 1) // 2
    A_at, out_at = A.ctypes.data, out.ctypes.data
    for c in range(C):
        if packed:
            _dtpttr(uplo, n, ctypes.c_void_p(A_at + 8 * c * p), a, n, status)
        else:
            factor[...] = A[c]
        _dpotrf(uplo, n, a, n, status)
        if info.value != 0:
            raise _not_spd("matrix", c, info.value)
        # out[c] (D, r) C-ordered is the Fortran (r, D) Bt_c^T: A_c X = Bt_c^T in place
        _dpotrs(uplo, n, n_rhs, a, n, ctypes.c_void_p(out_at + 8 * c * D * r), n, status)
    return out
