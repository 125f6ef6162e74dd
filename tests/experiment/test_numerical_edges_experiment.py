"""Length normalisation of i-vectors whose norm float64 cannot hold (the back-end's step between
WCCN/LDA and PLDA): every non-zero row comes out with unit norm, whatever its size."""

import numpy as np
import pytest

from emkit.experiment import length_norm


@pytest.mark.parametrize("unit", [1e300, 1e-300, 1e-200, 2.0**-1070, 1e-160, 2.3e-162])
def test_rows_whose_norm_overflows_or_underflows_get_unit_norm(unit):
    """Before: rows of 1e300 came out as zeros (their norm overflowed to inf, with numpy's
    RuntimeWarning), rows of 1e-300 came out unchanged (their norm underflowed to 0), rows of
    2.3e-162 with a norm of 1.03 (a subnormal sum of squares: digits lost)."""
    x = np.array([[3.0, -4.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(length_norm(x * unit), length_norm(x), rtol=1e-15, atol=0)


def test_ordinary_rows_are_unchanged_bit_for_bit_beside_zero_and_huge_rows():
    """Rows of ordinary size take the plain division, bit for bit as before; in one array with
    them, a zero row stays zero and a row of 1e300 is normalised on its own scale (it was the
    part that failed before: zeros)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_array_equal(length_norm(x), x / norm)
    mixed = np.array([[0.0, 0.0, 0.0], [1e300, 0.0, 0.0], [2.0, 0.0, 0.0]])
    np.testing.assert_array_equal(length_norm(mixed), [[0, 0, 0], [1, 0, 0], [1, 0, 0]])
    assert not np.shares_memory(length_norm(x), x)
