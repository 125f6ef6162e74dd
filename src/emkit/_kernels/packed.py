"""Symmetric matrices stored as packed lower triangles, and per-matrix LAPACK on them.

A symmetric (R, R) matrix is packed as its lower triangle, row by row: R(R+1)/2 numbers (row i
holds columns 0..i).  Those are the numbers of the *upper* triangle of the same matrix stored
column-major, so a C-ordered (R, R) buffer whose lower triangle is filled is, seen through its
transpose (a Fortran-ordered view, no copy), an upper-triangle argument for LAPACK: ``dpotrf``,
``dpotri`` and BLAS ``dsyr`` work in place on it.  Used by the i-vector E-step, where a stacked
recursion over (S, R, R) stacks costs four (R, R) matrices per utterance and runs at a fraction
of the BLAS rate; one (R, R) buffer per thread, reused, is all this needs.

The calls go to scipy's LAPACK/BLAS through ``ctypes`` on the function pointers that
``scipy.linalg.cython_lapack``/``cython_blas`` export (:func:`_nogil`): scipy's f2py wrappers
(``scipy.linalg.lapack.dpotrf`` ...) hold the GIL for the whole call, so two Python threads calling
them run one after the other (measured, scipy 1.17: 0.9x "speedup" on 2 threads, 2.0x through
ctypes, which releases the GIL).  Callers run them on their threads, with BLAS limited to one
thread (``emkit._backend.small_products``).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
import scipy.linalg.cython_blas as _cython_blas
import scipy.linalg.cython_lapack as _cython_lapack

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


_P = ctypes.c_void_p


def _nogil(module, name: str, n_args: int):
    """The Fortran routine ``name`` of scipy's BLAS/LAPACK (all arguments by pointer), called
    through ctypes, which releases the GIL during the call."""
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.CFUNCTYPE(None, *[_P] * n_args)(get_pointer(capsule, get_name(capsule)))


_dpotrf = _nogil(_cython_lapack, "dpotrf", 5)
_dpotrs = _nogil(_cython_lapack, "dpotrs", 8)
_dtrtri = _nogil(_cython_lapack, "dtrtri", 6)
_dlauum = _nogil(_cython_lapack, "dlauum", 5)
_dsyr = _nogil(_cython_blas, "dsyr", 7)
_dtrmm = _nogil(_cython_blas, "dtrmm", 11)
_dgemm = _nogil(_cython_blas, "dgemm", 13)
_dsyrk = _nogil(_cython_blas, "dsyrk", 10)
# packed <-> full triangle copies (np.put / np.take hold the GIL: ~20% of a posterior)
_dtpttr = _nogil(_cython_lapack, "dtpttr", 6)
_dtrttp = _nogil(_cython_lapack, "dtrttp", 6)


def _c(flag: bytes):
    return ctypes.byref(ctypes.c_char(flag))


def _i(value: int):
    return ctypes.byref(ctypes.c_int(int(value)))


def _d(value: float):
    return ctypes.byref(ctypes.c_double(value))


def _at(array: np.ndarray, offset: int = 0):
    """Pointer to element ``offset`` (in float64s) of ``array``'s data."""
    return _P(array.ctypes.data + 8 * offset)


def upper_inverse(U: np.ndarray, n: int | None = None, offset: int = 0) -> None:
    """Invert in place the upper-triangular (n, n) block at element ``offset`` of the
    Fortran-ordered ``U`` (leading dimension ``U.shape[0]``; whole ``U`` by default; its strict
    lower part is not read).  ``[[A, B], [0, D]]^-1 = [[A^-1, -A^-1 B D^-1], [0, D^-1]]``,
    recursively."""
    ld = U.shape[0]
    n = ld if n is None else n
    info = ctypes.c_int(0)
    if n <= TRTRI_LEAF:
        _dtrtri(_c(b"U"), _c(b"N"), _i(n), _at(U, offset), _i(ld), ctypes.byref(info))
        return
    h = n // 2
    upper_inverse(U, h, offset)
    upper_inverse(U, n - h, offset + h + h * ld)
    a11, a22, a12 = _at(U, offset), _at(U, offset + h + h * ld), _at(U, offset + h * ld)
    _dtrmm(_c(b"L"), _c(b"U"), _c(b"N"), _c(b"N"), _i(h), _i(n - h), _d(-1.0), a11, _i(ld),
           a12, _i(ld))
    _dtrmm(_c(b"R"), _c(b"U"), _c(b"N"), _c(b"N"), _i(h), _i(n - h), _d(1.0), a22, _i(ld),
           a12, _i(ld))


class NotPositiveDefinite(ValueError):
    """A matrix given to :func:`posterior_rows` is not positive definite."""


def _factor_identity_plus(packed: np.ndarray, s: int, buffer: np.ndarray, info) -> None:
    """The Cholesky factor ``U`` (``U'U = I + packed[s]``) in the Fortran upper triangle of the
    (R, R) C-ordered ``buffer`` (its C-ordered lower one).  Raises :class:`NotPositiveDefinite`."""
    R = buffer.shape[0]
    unpack_lower(packed[s], buffer)
    buffer.reshape(-1)[:: R + 1] += 1.0
    _dpotrf(_c(b"U"), _i(R), _at(buffer), _i(R), ctypes.byref(info))
    if info.value != 0:
        raise NotPositiveDefinite(f"matrix {s} is not positive definite (potrf info {info.value})")


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
    upper = buffer.T  # buffer's lower triangle = upper of its transpose
    ws, info = np.empty(R), ctypes.c_int(0)
    # the arguments built once (ctypes objects cost about a microsecond each)
    a, n, u, one, unit = _at(buffer), _i(R), _c(b"U"), _i(1), _d(1.0)
    status, w_ptr = ctypes.byref(info), _at(ws)
    if not packed.flags.c_contiguous:  # pragma: no cover - the E-step's scratch rows are
        raise ValueError("posterior_rows needs C-contiguous packed rows")
    K = packed.shape[1]
    for s in range(packed.shape[0]):
        _factor_identity_plus(packed, s, buffer, info)
        log_det = 2.0 * np.log(np.diagonal(upper)).sum()
        ws[:] = b[s]
        _dpotrs(u, n, one, a, n, w_ptr, n, status)
        upper_inverse(upper)
        _dlauum(u, n, a, n, status)
        _dsyr(u, n, unit, w_ptr, one, a, n)
        _dtrttp(u, n, a, n, _at(packed, s * K), status)
        w[s] = ws
        half_bw_logdet[s] = 0.5 * (b[s] @ ws) - 0.5 * log_det


def posterior_means(packed: np.ndarray, b: np.ndarray, w: np.ndarray, buffer: np.ndarray) -> None:
    """``w[s] = (I + packed[s])^-1 b[s]``: the posterior means alone (the i-vectors), for
    ``packed`` (S, R(R+1)/2) packed lower triangles (read only), ``b`` and ``w`` (S, R) and the
    (R, R) C-ordered scratch ``buffer``.  Per matrix ``dtpttr``, ``dpotrf`` and ``dpotrs``
    (R^3/3 flops), without the GIL.  Raises :class:`NotPositiveDefinite`."""
    R = buffer.shape[0]
    if not (packed.flags.c_contiguous and w.flags.c_contiguous):  # pragma: no cover
        raise ValueError("posterior_means needs C-contiguous packed rows and w")
    info = ctypes.c_int(0)
    a, n, u, one = _at(buffer), _i(R), _c(b"U"), _i(1)
    for s in range(packed.shape[0]):
        _factor_identity_plus(packed, s, buffer, info)
        w[s] = b[s]
        _dpotrs(u, n, one, a, n, _at(w, s * R), n, ctypes.byref(info))


def gram_lower(A: np.ndarray, out: np.ndarray, buffer: np.ndarray) -> None:
    """The packed lower triangle (:func:`lower_index` order) of the symmetric ``A' A`` for
    ``A`` (k, R) C-contiguous, into ``out`` (R(R+1)/2,), by BLAS ``dsyrk`` (half the products
    of ``A.T @ A``) on the (R, R) C-ordered scratch ``buffer``."""
    k, R = A.shape
    if not (A.flags.c_contiguous and buffer.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("gram_lower needs C-contiguous arrays")  # pragma: no cover
    info = ctypes.c_int(0)
    # A (k, R) C-ordered is the Fortran (R, k) matrix A'; A' A is its product with its transpose
    _dsyrk(_c(b"U"), _c(b"N"), _i(R), _i(k), _d(1.0), _at(A), _i(R), _d(0.0), _at(buffer), _i(R))
    _dtrttp(_c(b"U"), _i(R), _at(buffer), _i(R), _at(out), ctypes.byref(info))


def unpack_lower(packed: np.ndarray, buffer: np.ndarray) -> None:
    """Write the packed lower triangle ``packed`` (R(R+1)/2,) into the lower triangle of the
    (R, R) C-ordered ``buffer`` (the rest of ``buffer`` is left as it was)."""
    R, info = buffer.shape[0], ctypes.c_int(0)
    if not (packed.flags.c_contiguous and buffer.flags.c_contiguous):
        raise ValueError("unpack_lower needs C-contiguous arrays")  # pragma: no cover
    # the packed row-major lower triangle is LAPACK's packed upper one of buffer.T
    _dtpttr(_c(b"U"), _i(R), _at(packed), _at(buffer), _i(R), ctypes.byref(info))


def cholesky_solve(A: np.ndarray, X: np.ndarray, lower: bool) -> int:
    """Solve in place ``A X' = X'`` for X (m, n) C-ordered, i.e. the Fortran (n, m) right-hand
    sides ``X.T``, with ``dpotrf`` on ``A`` (n, n) C-ordered, seen as its Fortran transpose
    (``lower``: the lower triangle of that transpose is read, and overwritten by the factor).
    Returns LAPACK's ``info`` (0: solved; otherwise ``X`` is untouched or partly solved)."""
    n, info, uplo = A.shape[0], ctypes.c_int(0), _c(b"L" if lower else b"U")
    _dpotrf(uplo, _i(n), _at(A), _i(n), ctypes.byref(info))
    if info.value == 0:
        _dpotrs(uplo, _i(n), _i(X.shape[0]), _at(A), _i(n), _at(X), _i(n), ctypes.byref(info))
    return info.value


def _operand(M: np.ndarray):
    """``(array, trans, ld)`` for BLAS of the (p, q) matrix ``M``: column-major as it is
    (``N``), its transpose column-major (``T``), or a Fortran-ordered copy."""
    p, q = M.shape
    s0, s1 = M.strides
    if s0 == 8 and s1 % 8 == 0 and s1 // 8 >= max(1, p):
        return M, b"N", s1 // 8
    if s1 == 8 and s0 % 8 == 0 and s0 // 8 >= max(1, q):
        return M, b"T", s0 // 8
    M = np.asfortranarray(M)
    return M, b"N", max(1, p)


def gemm_add(out: np.ndarray, a: np.ndarray, b: np.ndarray, beta: float = 1.0) -> None:
    """``out = a @ b + beta * out`` by BLAS (``out += a @ b`` by default): no temporary, no extra
    pass over ``out``.  With ``beta = 0`` the former contents of ``out`` are not read (they may
    be anything, NaN included).

    ``out`` (m, k) C-contiguous; ``a`` (m, s) and ``b`` (s, k) any strided layout (copied only
    when neither they nor their transposes have unit stride along a dimension).
    """
    m, k = out.shape
    s = a.shape[1]
    if not out.flags.c_contiguous:  # pragma: no cover - callers pass contiguous rows
        raise ValueError("gemm_add needs a C-contiguous out")
    if m == 0 or k == 0:
        return
    if s == 0:  # an empty product
        if beta == 0.0:
            out.fill(0.0)
        else:
            out *= beta
        return
    # C-ordered out is Fortran-ordered out.T = b.T @ a.T + out.T
    x, trans_x, ldx = _operand(b.T)
    y, trans_y, ldy = _operand(a.T)
    _dgemm(_c(trans_x), _c(trans_y), _i(k), _i(m), _i(s), _d(1.0), _at(x), _i(ldx), _at(y),
           _i(ldy), _d(beta), _at(out), _i(max(1, k)))


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
