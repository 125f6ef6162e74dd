"""numpy before 2.1 lacks the array API functions the kernels call (permute_dims, concat,
astype, cumulative_sum...): numpy arrays then run through array_api_compat's numpy wrapper,
which must take the same numpy fast paths and give the same numbers as numpy itself."""

import array_api_compat.numpy as compat_numpy
import numpy as np

from emkit._kernels import _xp
from emkit._kernels import factor_analysis as kfa


def test_numpy_without_cumulative_sum_gets_the_compat_wrapper_counted_as_numpy(monkeypatch):
    monkeypatch.delattr(np, "cumulative_sum", raising=False)
    namespace = _xp._numpy_namespace()
    assert namespace is compat_numpy
    monkeypatch.setattr(_xp, "NUMPY", namespace)  # as at import on such a numpy
    assert _xp.is_numpy(namespace) and _xp.library(namespace) == "numpy"


def test_kernels_through_the_compat_wrapper_give_numpy_s_numbers(monkeypatch):
    rng = np.random.default_rng(0)
    C, D, r = 3, 4, 2
    W, variances = rng.normal(size=(C * D, r)), rng.uniform(0.5, 2.0, size=(C, D))
    A = kfa.subspace_products(W, variances) + np.eye(r)
    B = rng.normal(size=(C, r, 5))
    expected = kfa.subspace_products(W, variances), kfa.spd_solve(A, B), kfa.spd_inverse(A)

    monkeypatch.setattr(_xp, "NUMPY", compat_numpy)
    assert _xp.namespace(W) is compat_numpy
    got = kfa.subspace_products(W, variances), kfa.spd_solve(A, B), kfa.spd_inverse(A)
    for g, e in zip(got, expected):
        assert type(g) is np.ndarray
        np.testing.assert_array_equal(g, e)  # the same numpy (scipy) fast paths: bit for bit
