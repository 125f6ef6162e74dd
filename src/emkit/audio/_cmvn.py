"""Cepstral mean (and variance) normalisation, per utterance (:func:`cmvn`) or over a sliding
window (:func:`sliding_cmvn`), computed with cumulative sums (no loop over frames) in float64.
"""

from __future__ import annotations

import numpy as np

from .._validation import KALDI_INT_MAX, check_positive_int

__all__ = ["cmvn", "sliding_cmvn", "sliding_windows", "check_window"]


def _check(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (n_frames, n_features); got "
                         f"shape {np.shape(features)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    return x


def cmvn(features: np.ndarray, norm_vars: bool = False) -> np.ndarray:
    """Features normalised with the utterance's own mean (and variance).

    Kaldi's ``compute-cmvn-stats`` + ``apply-cmvn`` on one utterance.

    Parameters
    ----------
    features : array-like of shape (T, D)
        One utterance's frames (not modified).
    norm_vars : bool, default False
        Also divide by the standard deviation (variance floored at 1e-20).

    Returns
    -------
    ndarray of shape (T, D), float64

    Raises
    ------
    ValueError
        ``features`` not a non-empty 2-D array, or with NaN or infinite values.
    """
    x = _check(features)
    mean = x.mean(axis=0)
    if not norm_vars:
        return x - mean
    var = np.maximum(np.mean(x**2, axis=0) - mean**2, 1e-20)
    return (x - mean) / np.sqrt(var)


def check_window(frames, name: str) -> int:
    """``frames`` as an int; a TypeError or ValueError naming ``name`` unless it is an integer
    from 1 to 2**31 - 1 (Kaldi reads its windows as int32)."""
    return check_positive_int(frames, name, maximum=KALDI_INT_MAX, why="Kaldi's int32 options")


def sliding_windows(n_frames: int, cmn_window: int = 600, min_window: int = 100,
                    center: bool = False):
    """``(start, end)`` integer arrays ``(T,)``: frame ``t`` uses frames ``start[t]:end[t]``."""
    # windows past the utterance's ends give the same frames as these (bounded, as numpy needs)
    cmn_window = min(check_window(cmn_window, "cmn_window"), 2 * n_frames + 2)
    min_window = min(check_window(min_window, "min_window"), n_frames + 1)
    t = np.arange(n_frames)
    if center:
        start = t - cmn_window // 2
        end = start + cmn_window
    else:
        start = t - cmn_window
        end = t + 1
    end = np.where(start < 0, end - start, end)
    start = np.maximum(start, 0)
    if not center:
        end = np.where(end > t, np.maximum(t + 1, min_window), end)
    over = np.maximum(end - n_frames, 0)
    start = np.maximum(start - over, 0)
    end = np.minimum(end, n_frames)
    return start, end


def sliding_cmvn(features: np.ndarray, cmn_window: int = 600, min_window: int = 100,
                 center: bool = False, norm_vars: bool = False) -> np.ndarray:
    """Features normalised over a sliding window, as Kaldi's ``apply-cmvn-sliding``.

    The window of frame ``t`` is shifted to lie inside the utterance and cut to its length.

    Parameters
    ----------
    features : array-like of shape (T, D)
        One utterance's frames (not modified).
    cmn_window : int, default 600
        Window length, in frames: ``[t - cmn_window, t]`` (``center=False``) or
        ``[t - cmn_window // 2, t - cmn_window // 2 + cmn_window)`` (``center=True``); from 1
        to 2**31 - 1 (Kaldi's int32), as ``min_window``.
    min_window : int, default 100
        Not centred: the least window at the start (all frames when fewer).
    center : bool, default False
        Centre the window on the frame (else it ends there).
    norm_vars : bool, default False
        Also divide by the standard deviation in the window (variance floored at 1e-10; a
        one-frame window gives 0).

    Returns
    -------
    ndarray of shape (T, D), float64

    Raises
    ------
    ValueError
        ``features`` not a non-empty 2-D array, or with NaN or infinite values.
    """
    x = _check(features)
    x = x - x.mean(axis=0)  # the result does not change; the cumulative sums lose less precision
    start, end = sliding_windows(x.shape[0], cmn_window, min_window, center)
    count = (end - start)[:, None].astype(np.float64)
    zero = np.zeros((1, x.shape[1]))
    csum = np.concatenate((zero, np.cumsum(x, axis=0)))
    total = csum[end] - csum[start]
    out = x - total / count
    if norm_vars:
        csq = np.concatenate((zero, np.cumsum(x**2, axis=0)))
        var = (csq[end] - csq[start]) / count - (total / count) ** 2
        out = out / np.sqrt(np.maximum(var, 1e-10))
        out[count[:, 0] == 1] = 0.0
    return out
