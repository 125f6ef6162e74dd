"""The value checks of :func:`emkit.io.h5.read_array`: what a dataset's values must be once read
(whole, or block by block when ``save`` reads back what it wrote: :mod:`emkit.io.read_back`)."""

from __future__ import annotations

import numpy as np

_OUT_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}


def check_read_values(data, kind: str, positive: bool, nonnegative: bool, fail) -> None:
    """Call ``fail(problem)`` (which raises) unless the values ``data`` read from a dataset are
    what ``read_array`` accepts for ``kind`` (``"float"``: finite; ``"int"``: within int64;
    ``"bool"``: 0 or 1), and > 0 when ``positive``, >= 0 when ``nonnegative``."""
    if kind == "float":
        if not np.all(np.isfinite(data)):
            fail("holds NaN or infinite values")
    else:
        if kind == "int" and data.dtype.kind == "u" and data.size and data.max() > np.iinfo(np.int64).max:
            fail("holds integers beyond the int64 range")
        if kind == "bool" and data.dtype.kind in "iu" and np.any((data != 0) & (data != 1)):
            fail("must hold booleans (0 or 1)")
    if positive and not np.all(data > 0):
        fail("must hold values > 0; some are <= 0")
    if nonnegative and not np.all(data >= 0):
        fail("must hold values >= 0; some are negative")


def as_read(data, kind: str) -> np.ndarray:
    """``data`` as the C-contiguous float64 / int64 / bool array ``read_array`` returns (the same
    array when it already is one)."""
    return np.ascontiguousarray(data, dtype=_OUT_DTYPES[kind])


def within(values: np.ndarray, bound: float) -> bool:
    """Whether every one of the finite ``values`` lies in ``[-bound, bound]``, found without a
    temporary of their size (``np.abs(values)`` doubled the memory of a model's load)."""
    return values.size == 0 or bool(-bound <= values.min() and values.max() <= bound)
