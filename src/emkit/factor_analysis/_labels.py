"""Class labels of ISV/JFA training: any hashable labels -> class indices ``0..K-1``.

Labels are mapped in sorted order (first-appearance order when they cannot be sorted) by
:func:`emkit._labels.encode_labels`, shared with WCCN and PLDA; the step API of the reference
takes integer class indices directly (:func:`check_class_indices`).
"""

from __future__ import annotations

import logging

import numpy as np

from .._backend import is_dask_collection
from .._labels import check_label_sequence, encode_labels

__all__ = ["encode_labels", "check_class_indices", "check_lengths", "label_list",
           "warn_of_few_sessions_per_class"]

logger = logging.getLogger("emkit")


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
    """``y`` of ``fit`` (a dask collection is computed); None, a mapping, a set and scalars are
    refused (:func:`emkit._labels.check_label_sequence`)."""
    if is_dask_collection(y):
        y = y.compute()
    if y is None:
        raise ValueError(f"{name} is required: one class label per session")
    return check_label_sequence(y, name, "session")


#: Below these, U is learned from too few sessions of multi-session classes to trust (a warning):
#: classes with two or more sessions (one class's differences are its own speaker's habits)...
MIN_MULTI_SESSION_CLASSES = 2
#: ...and the share of the sessions that are in such classes (a single session's deviation is
#: its speaker's as much as its session's, so the more of them, the more U models speakers)
MIN_MULTI_SESSION_SHARE = 0.5


def warn_of_few_sessions_per_class(counts: np.ndarray, estimator: str) -> None:
    """A warning of the ``emkit`` logger when no class has two sessions (``counts``: sessions per
    class): U is learned from the differences between sessions of a class, so it then cannot
    model session variability; and when few do (fewer than :data:`MIN_MULTI_SESSION_CLASSES`
    classes, or less than :data:`MIN_MULTI_SESSION_SHARE` of the sessions), with the counts.
    A log record, not a Python warning: training on such data is legitimate (tests, demos) and
    must not fail under ``-W error``.  ``counts`` comes from the labels: no pass over the data."""
    if not len(counts):
        return
    if counts.max() < 2:
        logger.warning(
            "%s training: each of the %d classes (speakers) has a single session, so U, learned "
            "from differences between sessions of the same class, cannot model session "
            "variability; give some classes two or more sessions", estimator, len(counts))
        return
    if len(counts) == 1:
        logger.warning(
            "%s training: all %d sessions are of one class (speaker), so U, learned from "
            "differences between sessions of the same class, is learned from one speaker's "
            "sessions only; give more classes two or more sessions", estimator, int(counts[0]))
        return
    multi = counts >= 2
    classes, sessions = int(multi.sum()), int(counts[multi].sum())
    total = int(counts.sum())
    if classes < MIN_MULTI_SESSION_CLASSES or sessions < MIN_MULTI_SESSION_SHARE * total:
        logger.warning(
            "%s training: only %d of the %d classes (speakers) have two or more sessions, "
            "holding %d of the %d sessions (%.0f%%), so U, learned from differences between "
            "sessions of the same class, is learned from few of them and the single-session "
            "classes' speaker variability leaks into it; give more classes two or more "
            "sessions", estimator, classes, len(counts), sessions, total, 100 * sessions / total)
