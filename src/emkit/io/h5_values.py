"""The value checks of :func:`emkit.io.h5.read_array`: what a dataset's values must be once read
(whole, or block by block when ``save`` reads back what it wrote: :mod:`emkit.io.read_back`)."""

from __future__ import annotations

import h5py
import numpy as np

#: nothing here is public API: the helpers of emkit.io.h5's checked reads (internal; their
#: un-underscored names stay importable)
__all__ = []

_OUT_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_}
_KINDS = {"float": "fiu", "int": "iu", "bool": "biu"}
_NOUNS = {"float": "numbers", "int": "integers", "bool": "booleans"}


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


def describe_dtype(dtype) -> str:
    """A short name of a dataset's or attribute's type for messages, never quoting values."""
    if dtype.fields is not None:
        return "a compound type"
    if h5py.check_string_dtype(dtype) is not None:
        return "text"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    if h5py.check_ref_dtype(dtype) is not None:
        return "object references"
    if dtype.kind == "V":
        return "an opaque type"
    return f"dtype {dtype.str}"


def number_type_problem(dtype, kind: str) -> str | None:
    """Why a dataset's or attribute's ``dtype`` cannot be read as ``kind`` (``"float"``,
    ``"int"``, ``"bool"``: plain numbers of at most 8 bytes), or None when it can."""
    if (dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _KINDS[kind]
            or dtype.itemsize > 8):
        return f"must hold {_NOUNS[kind]}; found {describe_dtype(dtype)}"
    return None


def bounds_text(low, high) -> str:
    """``low``/``high`` (inclusive, either may be None) as a message says them."""
    if low is not None and low == high:
        return f"{low}"
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}"
