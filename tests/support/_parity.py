"""Helpers shared by the parity tests.

The tolerance rule of the suite
-------------------------------
A result compared with the reference (or with a naive oracle) is judged by its error relative to
the *array's* largest magnitude, ``max|a - b| / max|b|`` (:func:`max_rel_diff`), never by the
element-wise ``|a - b| / |b|``. In an ill-conditioned result (a whitening matrix, a covariance
inverse, latent factors) the small entries carry an absolute error of the order of
``eps * max|b| * cond``, so their element-wise relative error depends on the BLAS/LAPACK build and
the CPU, not on whether emkit is right: 4e-14 absolute on an entry of 1.1e-4 is 3.75e-10
relative, although the array is exact to 1e-13 of its scale. Keep the tolerance (1e-10 for
float64 parity) and scale it to the array; where a test knows the problem's condition number,
scale by it as well (:func:`assert_parity` ``cond=``) rather than loosening the tolerance.
``np.testing.assert_allclose(actual, desired, rtol=r)`` without ``atol`` is the element-wise
check: for comparisons between different computations use :func:`assert_parity` instead.
"""

import pathlib

import numpy as np

#: Fixtures made with the reference (see tests/data/*/make_*.py for the scripts that made them).
DATA = pathlib.Path(__file__).parents[1] / "data"


def max_rel_diff(a, b):
    """The parity measure of the suite: ``max|a - b| / max|b|`` over the whole array.

    ``a`` and ``b`` are array-likes of the same shape; ``b`` is the expected value. Returns the
    largest absolute difference divided by the largest magnitude of ``b`` (the plain ``max|a|``
    when ``b`` is all zeros, 0.0 for empty arrays). NaN anywhere gives NaN, so any ``<=`` check
    fails on it.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    scale = np.max(np.abs(b))
    diff = np.max(np.abs(a - b))
    return float(diff / scale) if scale > 0 else float(diff)


def assert_parity(actual, desired, tol=1e-10, cond=1.0, err_msg=""):
    """Assert ``max|actual - desired| <= tol * cond * max|desired|`` (see the module docstring).

    ``cond`` is the condition number of the problem that produced ``desired`` (1 when the
    computation is well conditioned); the check fails on any NaN and on a shape mismatch.
    """
    got = max_rel_diff(actual, desired)
    limit = tol * cond
    assert got <= limit, f"{err_msg} max|a-b|/max|b| = {got:.3g} > {limit:.3g}".strip()
