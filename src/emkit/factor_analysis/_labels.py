"""Class labels of ISV/JFA training: any hashable labels -> class indices ``0..K-1``.

Labels are mapped in sorted order (first-appearance order when they cannot be sorted); the step
API of the reference takes integer class indices directly (:func:`check_class_indices`).
"""

from __future__ import annotations

import numpy as np

from .._backend import is_dask_collection


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: tuples must stay scalars
        out[i] = v
    return out


def encode_labels(y, name: str = "y"):
    """``(codes (S,) int64, classes (K,))`` with ``classes[codes] == y``."""
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
        classes, codes = np.unique(y, return_inverse=True)
        return codes.astype(np.int64).ravel(), classes
    if isinstance(y, (str, bytes)) or not hasattr(y, "__iter__"):
        raise TypeError(f"{name} must be a sequence of labels; got {type(y).__name__}")
    labels = list(y)
    try:
        unique = set(labels)
    except TypeError as exc:
        raise TypeError(f"{name} must contain hashable labels; {exc}") from None
    try:
        classes = sorted(unique)
    except TypeError:  # e.g. mixed types: keep the order of first appearance
        classes = list(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(classes)}
    codes = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))
    return codes, _object_array(classes)


def check_class_indices(y, n_classes: int, name: str = "y") -> np.ndarray:
    """Labels of the public step methods: integer class indices in ``[0, n_classes)``."""
    codes = np.asarray(y)
    if codes.ndim != 1 or (codes.size and codes.dtype.kind not in "iu"):
        raise ValueError(
            f"{name} must hold integer class indices 0..{n_classes - 1} (the rows of n_acc/f_acc); "
            f"got {codes.dtype} values of shape {codes.shape}"
        )
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes}); got values in "
            f"[{codes.min()}, {codes.max()}]"
        )
    return codes.astype(np.int64)


def check_lengths(n_x, n_y):
    if n_x != n_y:
        raise ValueError(
            f"X and y have inconsistent numbers of sessions: len(X) = {n_x}, len(y) = {n_y}"
        )


def label_list(y, name="y"):
    """``y`` of ``fit`` (a dask collection is computed); None is refused."""
    if is_dask_collection(y):
        y = y.compute()
    if y is None:
        raise ValueError(f"{name} is required: one class label per session")
    return y
