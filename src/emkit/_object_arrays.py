"""Object arrays of numbers (a list holding None, a table of object columns) as float64, and the
element that is not a number named with its index."""

import numbers

import numpy as np

from ._describe import describe


def objects_as_numbers(X, name: str):
    """``X`` as float64 when it makes a 1-D or 2-D object array (a list holding None, a table
    of object columns) of what ``float()`` converts (scikit-learn's rule), else ``X``.  Another
    element (None, a word, a dict) is named with its index, a TypeError (ValueError for a
    string, as ``float()``): scikit-learn read None as NaN, or kept a list's object array."""
    dtype, dtypes = getattr(X, "dtype", None), getattr(X, "dtypes", None)  # (dtypes: a table's)
    if isinstance(dtype, np.dtype) and dtype != object or dtypes is not None and all(
            d != object for d in dtypes):
        return X
    try:
        values = np.asarray(X)
    except (ValueError, TypeError):  # ragged: check_array explains it
        return X
    if values.dtype != object or values.ndim not in (1, 2):
        return X
    flat = values.ravel()
    bad = np.flatnonzero(~np.frompyfunc(_converts, 1, 1)(flat).astype(bool))
    if not len(bad):
        return values.astype(np.float64)
    value = flat[bad[0]]
    if np.ndim(value) > 0:  # arrays in an array: the shape checks explain it
        return X
    where = ", ".join(str(int(i)) for i in np.unravel_index(bad[0], values.shape))
    kind = "an object array" if isinstance(X, np.ndarray) else f"a {type(X).__name__}"
    error = ValueError if isinstance(value, (str, bytes)) else TypeError
    raise error(f"{name} must hold numbers; got {kind} holding {describe(value)} at [{where}] "
                "(each element is converted with float(), whose argument must be a real number "
                "or a string of a number)")


def _converts(value) -> bool:
    """Whether ``float(value)`` is a number: a real one (a bool, a Decimal too) or a string of
    one, not None, a word or a complex number."""
    if isinstance(value, (str, bytes)):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, (numbers.Real, np.bool_)) or (
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex))
