"""Array-namespace helpers shared by the namespace-generic kernels.

:func:`namespace` returns :data:`NUMPY` for numpy input: ``numpy`` itself from numpy 2.1 on
(its main namespace implements the array API standard, ``cumulative_sum`` included; no wrapper,
no import of ``array_api_compat``), the ``array_api_compat`` wrapper of numpy before (numpy 1.x
lacks ``permute_dims``, ``concat``, ``astype``...).  Other arrays get their ``array_api_compat``
namespace (PyTorch, CuPy, ``array-api-strict``...).

The standard's ``linalg`` extension has ``cholesky``, ``eigh``, ``solve`` and ``inv`` but no
triangular or Cholesky solves, and no scatter-add: the few helpers below dispatch those to
scipy (numpy), ``torch.linalg`` (PyTorch) or ``cupyx.scipy`` (CuPy), with a generic fallback
written in the standard (used by ``array-api-strict`` on CI).
"""

from __future__ import annotations

import numpy as np

__all__ = ["NUMPY", "namespace", "is_numpy", "library", "device_of", "asarray_like", "take_index",
           "cholesky", "solve_triangular", "cho_solve", "spd_solve", "spd_inverse",
           "segment_sum", "to_host", "to_host_index", "LinAlgFailure"]


def _numpy_namespace():
    if hasattr(np, "cumulative_sum"):  # numpy >= 2.1
        return np
    from array_api_compat import numpy as compat_numpy

    return compat_numpy


#: The array namespace of numpy arrays (see the module's docstring).
NUMPY = _numpy_namespace()


class LinAlgFailure(ValueError):
    """A factorisation failed (matrix not positive definite); callers re-raise with context."""


def namespace(*arrays):
    """The array namespace of ``arrays`` (``None`` and Python scalars are ignored)."""
    for a in arrays:  # a plain loop: this runs on every kernel call (about 0.1 us per array)
        if not isinstance(a, np.ndarray) and a is not None and not isinstance(a, (int, float)):
            import array_api_compat

            return array_api_compat.array_namespace(
                *[b for b in arrays if b is not None and not isinstance(b, (int, float))])
    return NUMPY


def is_numpy(xp) -> bool:
    """Whether ``xp`` is numpy's namespace (numpy itself or :data:`NUMPY`)."""
    return xp is np or xp is NUMPY


def library(xp) -> str:
    """"numpy", "torch", "cupy" or "generic" (any other namespace: the standard only)."""
    if is_numpy(xp):
        return "numpy"
    import array_api_compat as c

    if c.is_torch_namespace(xp):
        return "torch"
    if c.is_cupy_namespace(xp):
        return "cupy"
    if c.is_numpy_namespace(xp):
        return "numpy-compat"
    return "generic"


def device_of(x):
    import array_api_compat

    return array_api_compat.device(x)


def asarray_like(values, like, xp, dtype=None):
    """``values`` (numpy/Python) as an array of ``xp`` on ``like``'s device."""
    if is_numpy(xp):
        return np.asarray(values, dtype=dtype)
    return xp.asarray(values, dtype=dtype, device=device_of(like))


def take_index(x, index, axis, xp):
    """``x`` indexed by the integer (numpy) ``index`` along ``axis``."""
    if is_numpy(xp):
        return np.take(x, index, axis=axis)
    return xp.take(x, asarray_like(index, x, xp, dtype=xp.int64), axis=axis)


def _raw(xp):
    lib = library(xp)
    if lib == "torch":
        import torch

        return lib, torch
    if lib == "cupy":
        import cupy

        return lib, cupy
    return lib, None


def cholesky(A, xp):
    """Lower Cholesky factor of ``A`` (..., n, n); :class:`LinAlgFailure` when not positive
    definite (CuPy reports it as NaN, checked here)."""
    try:
        L = xp.linalg.cholesky(A)
    except Exception as exc:  # numpy/torch LinAlgError, strict's numpy error
        if "LinAlg" in type(exc).__name__ or "positive" in str(exc).lower():
            raise LinAlgFailure(str(exc)) from None
        raise
    if library(xp) == "cupy" and not bool(xp.all(xp.isfinite(L))):
        raise LinAlgFailure("Matrix is not positive definite")
    return L


def solve_triangular(L, B, xp, lower=True, trans=False):
    """Solve ``op(L) X = B`` for (batched) triangular ``L``; ``op`` is the transpose when
    ``trans``.  B (..., n, k)."""
    lib, raw = _raw(xp)
    if lib == "numpy" and L.ndim == 2:
        from scipy import linalg

        return linalg.solve_triangular(L, B, lower=lower, trans="T" if trans else "N",
                                       check_finite=False)
    if lib == "torch":
        M = L.mT if trans else L
        return raw.linalg.solve_triangular(M, B, upper=(lower == trans))
    if lib == "cupy" and L.ndim == 2:
        from cupyx.scipy import linalg

        return linalg.solve_triangular(L, B, lower=lower, trans="T" if trans else "N")
    M = xp.linalg.matrix_transpose(L) if trans else L
    return xp.linalg.solve(M, B)  # the standard has no triangular solve: a general one


def cho_solve(L, B, xp):
    """Solve ``A X = B`` from the lower Cholesky factor ``L`` of ``A``."""
    lib, raw = _raw(xp)
    if lib == "numpy" and L.ndim == 2:
        from scipy import linalg

        return linalg.cho_solve((L, True), B, check_finite=False)
    if lib == "torch":
        return raw.cholesky_solve(B, L, upper=False)
    Y = solve_triangular(L, B, xp, lower=True)
    return solve_triangular(L, Y, xp, lower=True, trans=True)


def spd_solve(A, B, xp):
    """Solve ``A_s X_s = B_s`` for symmetric positive definite ``A`` (S, n, n), B (S, n, k)."""
    if is_numpy(xp):
        from .linalg import spd_solve as _np_spd_solve

        return _np_spd_solve(A, B)
    return cho_solve(cholesky(A, xp), B, xp)


def spd_inverse(A, xp):
    """Inverse of each symmetric positive definite matrix of ``A`` (S, n, n)."""
    if is_numpy(xp):
        from .linalg import spd_inverse as _np_spd_inverse

        return _np_spd_inverse(A)
    n = A.shape[-1]
    eye = xp.eye(n, dtype=A.dtype, device=device_of(A))
    return cho_solve(cholesky(A, xp), xp.broadcast_to(eye, A.shape), xp)


def segment_sum(codes, values, n_groups: int, xp):
    """``out[k] = sum_{s: codes_s = k} values[s]``: (n_groups, ...) from codes (S,) (integers
    of ``xp``) and values (S, ...).  torch: ``index_add``; CuPy: ``scatter_add``; otherwise a
    product with a dense (n_groups, S) indicator (the standard has no scatter-add)."""
    lib, raw = _raw(xp)
    S = values.shape[0]
    flat = xp.reshape(values, (S, -1))
    if lib == "torch":
        out = raw.zeros((n_groups, flat.shape[1]), dtype=flat.dtype, device=flat.device)
        out.index_add_(0, codes.to(raw.int64), flat)
    elif lib == "cupy":
        import cupyx

        out = raw.zeros((n_groups, flat.shape[1]), dtype=flat.dtype)
        cupyx.scatter_add(out, codes, flat)
    else:
        groups = xp.arange(n_groups, device=device_of(values))
        indicator = xp.astype(groups[:, None] == codes[None, :], values.dtype)
        out = indicator @ flat
    return xp.reshape(out, (n_groups,) + tuple(values.shape[1:]))


def to_host(x, dtype=np.float64) -> np.ndarray:
    """A (small) array of any namespace as numpy ``dtype``: a synchronisation on a device."""
    if isinstance(x, np.ndarray):
        return x.astype(dtype, copy=False)
    from .._backend._device import to_numpy

    return to_numpy(x, dtype=dtype)


def to_host_index(index) -> np.ndarray:
    """An integer index array of any namespace as numpy int64 (small index vectors only)."""
    return to_host(index, np.int64)
