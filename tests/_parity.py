"""Helpers shared by the parity tests."""

import pathlib

import numpy as np

#: Fixtures made with the reference (see tests/data/*/make_*.py for the scripts that made them).
DATA = pathlib.Path(__file__).parent / "data"


def max_rel_diff(a, b):
    """The parity measure of the suite: max over elements of |a - b| / max(|b|, 1e-6 max|b|).

    Element-wise relative difference, with the denominator floored at a millionth of the array's
    largest magnitude so that entries that are zero up to rounding (e.g. 1e-17) do not dominate.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    scale = np.max(np.abs(b))
    if scale == 0:
        return float(np.max(np.abs(a)))
    denom = np.maximum(np.abs(b), 1e-6 * scale)
    return float(np.max(np.abs(a - b) / denom))
