"""Deltas and delta-deltas with Kaldi's ``add-deltas`` semantics.

The order-``i`` filter is the order-``i-1`` filter convolved with the regression window
``j / sum(j^2)``, ``j = -window .. window``; frames beyond either end repeat the first or last
frame.  With ``order=2, window=2`` (Kaldi's defaults) a ``(T, D)`` input gives ``(T, 3D)``:
the features, their deltas and their delta-deltas.
"""

from __future__ import annotations

import numpy as np

from .._describe import describe
from .._validation import check_positive_int

__all__ = ["delta_filters", "add_deltas", "MAX_DELTA_REACH"]

#: Most frames (10 s at Kaldi's 10 ms shift) the highest-order filter may reach on each side,
#: ``order * window``: its filters take time and memory growing as ``order**2 * window``, so a
#: recipe or options file saying ``delta-order=2147483648`` would otherwise hang the reader.
MAX_DELTA_REACH = 1000


def delta_filters(order: int = 2, window: int = 2, *, names=("order", "window")) -> list:
    """The filters of orders ``0 .. order``: 1-D arrays of length ``2 * i * window + 1``.

    ``names``: how messages name ``order`` and ``window``.  ``window`` and ``order * window``
    must be at most :data:`MAX_DELTA_REACH`.
    """
    order = check_positive_int(order, names[0], minimum=0)
    window = check_positive_int(window, names[1])
    if window > MAX_DELTA_REACH:
        raise ValueError(f"{names[1]} must be at most {MAX_DELTA_REACH} (frames on each side); "
                         f"got {describe(window)}")
    if order * window > MAX_DELTA_REACH:
        raise ValueError(f"{names[0]} must be at most {MAX_DELTA_REACH // window} with {names[1]} "
                         f"{window} (the deltas may reach {MAX_DELTA_REACH} frames on each side, "
                         f"{names[0]} * {names[1]}); got {describe(order)}")
    taps = np.arange(-window, window + 1, dtype=np.float64)
    regression = taps / np.sum(taps**2)
    filters = [np.ones(1)]
    for _ in range(order):
        filters.append(np.convolve(filters[-1], regression))
    return filters


def add_deltas(features: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """Features followed by their deltas, delta-deltas, ... as Kaldi's ``add-deltas``.

    Parameters
    ----------
    features : array-like of shape (T, D)
        One utterance's frames (not modified).
    order : int, default 2
        Highest delta order (0: the features alone).
    window : int, default 2
        Each delta is a regression over ``2 * window + 1`` frames (edges repeated).

    Returns
    -------
    ndarray of shape (T, D * (order + 1)), float64

    Raises
    ------
    ValueError
        ``features`` not a non-empty 2-D array; ``order`` or ``window`` out of range.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (n_frames, n_features); got "
                         f"shape {np.shape(features)}")
    filters = delta_filters(order, window)
    reach = (filters[-1].shape[0] - 1) // 2
    padded = np.pad(x, ((reach, reach), (0, 0)), mode="edge")
    n = x.shape[0]
    blocks = []
    for f in filters:
        half = (f.shape[0] - 1) // 2
        block = np.zeros_like(x)
        for k, scale in enumerate(f):  # tap k reads frame t + k - half
            if scale != 0.0:
                start = reach + k - half
                block += scale * padded[start:start + n]
        blocks.append(block)
    return np.hstack(blocks)
