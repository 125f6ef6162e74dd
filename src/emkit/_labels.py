"""Class labels of the estimators trained with labels (ISV/JFA, WCCN, PLDA): any hashable values ->
integer class codes ``0..K-1``; NaN is refused (``np.unique`` merged NaNs into one class, a
list made one class of each).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Set

import numpy as np

from ._backend import is_dask_collection
from ._describe import describe


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: tuples must stay scalars
        out[i] = v
    return out


def _is_nan(label) -> bool:
    return isinstance(label, numbers.Number) and label != label


def check_no_nan_labels(codes, classes, name: str = "y"):
    """``(codes, classes)`` of an encoding of ``name``, or a ValueError naming the first NaN label."""
    if isinstance(classes, np.ndarray) and classes.dtype.kind in "fc":
        nan = np.isnan(classes)
    else:
        nan = np.fromiter((_is_nan(c) for c in classes), dtype=bool, count=len(classes))
    if nan.any():
        i = int(np.flatnonzero(nan[codes])[0])
        raise ValueError(f"{name}[{i}] is NaN: class labels must not be NaN")
    return codes, classes


def check_label_sequence(y, name: str = "y", per: str = "sample"):
    """``y`` when it is a sequence of labels, one per ``per``; else a TypeError naming ``name``.

    A mapping is refused (iterating it gives its keys, not the values the user most likely meant),
    and so is a set (its order is arbitrary, so labels would not line up with the samples), a
    str (one label per character), a scalar and anything that cannot be indexed (an iterator,
    ``dict.values()``).
    """
    if isinstance(y, Mapping):
        got = (f"a {type(y).__name__} of {len(y)} items (its keys would be taken as the labels; "
               f"pass list({name}.values()) if its values are the labels)")
    elif isinstance(y, Set):
        got = f"a {type(y).__name__} of {len(y)} labels, whose order is arbitrary"
    elif isinstance(y, (str, bytes)) or not hasattr(y, "__len__") or getattr(y, "ndim", 1) == 0:
        got = f"{type(y).__name__} {describe(y)}"
    elif not hasattr(y, "__getitem__"):
        got = f"a {type(y).__name__} of {len(y)} items, which cannot be indexed"
    else:
        return y
    raise TypeError(f"{name} must be a sequence of class labels, one per {per}; got {got}")


def encode_labels(y, name: str = "y", *, first_appearance: bool = False, per: str = "sample"):
    """``(codes (S,) int64, classes (K,) array)`` with ``classes[codes] == y``.

    A numpy array of numbers or text (1-D, or a single row or column) gives its sorted distinct
    values; other sequences (a list, an object array) an object array of their distinct labels,
    sorted, or in order of first appearance when they cannot be sorted (mixed types).
    ``first_appearance`` orders the classes by first appearance in every case.
    """
    if is_dask_collection(y):
        y = y.compute()
    if isinstance(y, np.ndarray) and y.dtype != object:
        if y.ndim != 1:
            if y.ndim == 2 and 1 in y.shape:
                y = y.ravel()
            else:
                raise ValueError(
                    f"{name} must be a 1-D sequence of labels; got an array of shape {y.shape}"
                )
        classes, first, codes = np.unique(y, return_index=True, return_inverse=True)
        codes = codes.astype(np.int64).ravel()
        if first_appearance:
            order = np.argsort(first, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            codes, classes = rank[codes], classes[order]
        return check_no_nan_labels(codes, classes, name)
    labels = list(check_label_sequence(y, name, per))
    try:
        unique = set(labels)
    except TypeError as exc:
        raise TypeError(f"{name} must contain hashable labels; {exc}") from None
    try:
        classes = list(dict.fromkeys(labels)) if first_appearance else sorted(unique)
    except TypeError:  # e.g. mixed types: keep the order of first appearance
        classes = list(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(classes)}
    codes = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))
    return check_no_nan_labels(codes, _object_array(classes), name)
