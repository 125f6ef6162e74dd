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
    found = _first_non_number(values)
    if found is None:
        return values.astype(np.float64)
    index, value = found
    if np.ndim(value) > 0:  # arrays in an array: the shape checks explain it
        return X
    if isinstance(X, np.ndarray):
        kind = "an object array"
    elif hasattr(X, "__dask_graph__"):
        kind = "a dask array of dtype object"
    else:
        kind = f"a {type(X).__name__}"
    raise _not_numbers(name, value, f"{kind} holding {describe(value)} at {_shown(index)}")


def dask_objects_as_numbers(X, name: str):
    """A dask array of dtype object as a float64 one, each chunk converted as it is computed (no
    pass of its own over ``X``), with :func:`objects_as_numbers`' errors: the element named is
    the first of the chunk that failed, which need not be the first of the whole array."""
    meta = np.empty((0,) * X.ndim, dtype=np.float64)
    return X.map_blocks(_chunk_as_numbers, name, dtype=np.float64, meta=meta)


def _chunk_as_numbers(block, name: str, block_info=None) -> np.ndarray:
    """One chunk of :func:`dask_objects_as_numbers`; ``block_info``: dask's, for the index."""
    values = np.asarray(block)
    found = _first_non_number(values)
    if found is None or np.ndim(found[1]) > 0:  # (arrays inside: numpy's error explains it)
        return values.astype(np.float64)
    index, value = found
    try:
        location = block_info[0]["array-location"]
        starts = [int(start) for start, _ in location]  # (NaN where chunk sizes are unknown)
    except (TypeError, KeyError, IndexError, ValueError):
        where = f"{_shown(index)} of one of its dask chunks"
    else:
        chunk = ", ".join(f"{int(start)}:{int(stop)}" for start, stop in location)
        where = (f"{_shown(np.add(starts, index))}, the first in its dask chunk {name}[{chunk}] "
                 "(chunks are converted one by one: another may hold an earlier one)")
    raise _not_numbers(name, value, f"a dask array of dtype object holding {describe(value)} "
                                    f"at {where}")


def _first_non_number(values: np.ndarray):
    """``(index, element)`` of the first element of object array ``values`` that ``float()``
    does not take as a number, or None."""
    flat = values.ravel()
    bad = np.flatnonzero(~np.frompyfunc(_converts, 1, 1)(flat).astype(bool))
    if not len(bad):
        return None
    return np.unravel_index(bad[0], values.shape), flat[bad[0]]


def _shown(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _not_numbers(name: str, value, what: str) -> Exception:
    error = ValueError if isinstance(value, (str, bytes)) else TypeError
    return error(f"{name} must hold numbers; got {what} (each element is converted with float(), "
                 "whose argument must be a real number or a string of a number)")


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
