"""Energy voice activity detection with the semantics of Kaldi's ``compute-vad``.

A frame's energy is "high" when its log energy exceeds ``energy_threshold + energy_mean_scale
* mean(log energy)`` (the mean over the utterance).  Frame ``t`` is voiced when at least
``proportion_threshold`` of the frames ``t - frames_context .. t + frames_context`` that exist
(the window is cut at the utterance's ends) are high.  Defaults are Kaldi's
(``--vad-energy-threshold=5.0 --vad-energy-mean-scale=0.5 --vad-frames-context=0
--vad-proportion-threshold=0.6``); log energies are those of 16-bit-scale audio.
"""

from __future__ import annotations

import numpy as np

from .._describe import describe
from .._validation import KALDI_INT_MAX, check_positive_int

__all__ = ["compute_vad"]

_INT32 = "Kaldi's int32 options"


def compute_vad(log_energy: np.ndarray, *, energy_threshold: float = 5.0,
                energy_mean_scale: float = 0.5, frames_context: int = 0,
                proportion_threshold: float = 0.6) -> np.ndarray:
    """The voiced frames of an utterance, from its log energies.

    Kaldi's ``compute-vad``, with its defaults; vectorised (counts over the context window come
    from a cumulative sum).

    Parameters
    ----------
    log_energy : ndarray of shape (T,)
        Log energy of each frame, of 16-bit-scale audio (:func:`emkit.audio.log_energy`).
    energy_threshold : float
        A frame is loud when its log energy exceeds ``energy_threshold + energy_mean_scale *
        mean(log_energy)`` (the mean over the utterance).
    energy_mean_scale : float >= 0
        Weight of the utterance's mean log energy in that threshold (0: a fixed threshold).
    frames_context : int
        Frames on each side of frame ``t`` that its decision looks at: the window
        ``t - frames_context .. t + frames_context``, cut at the utterance's ends; from 0 to
        2**31 - 1 (Kaldi's int32).
    proportion_threshold : float in (0, 1)
        Frame ``t`` is voiced when at least this fraction of its window is loud.

    Returns
    -------
    ndarray of shape (T,), bool
        True for the voiced frames.

    Raises
    ------
    ValueError
        ``log_energy`` not 1-D or not finite; an option out of range.
    """
    e = np.asarray(log_energy, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"log_energy must be 1-D (n_frames,); got shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("log_energy contains NaN or infinite values")
    if not np.isfinite(energy_threshold):
        raise ValueError(f"energy_threshold must be a finite number; got "
                         f"{describe(energy_threshold)}")
    if not (np.isfinite(energy_mean_scale) and energy_mean_scale >= 0):
        raise ValueError(f"energy_mean_scale must be a finite number >= 0; got "
                         f"{describe(energy_mean_scale)}")
    # (a context past the utterance's ends is the whole utterance: bounded, as numpy needs)
    frames_context = min(check_positive_int(frames_context, "frames_context", minimum=0,
                                            maximum=KALDI_INT_MAX, why=_INT32), e.size)
    if not 0.0 < proportion_threshold < 1.0:
        raise ValueError(f"proportion_threshold must be in (0, 1); got "
                         f"{describe(proportion_threshold)}")
    n = e.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    threshold = energy_threshold
    if energy_mean_scale != 0.0:
        threshold += energy_mean_scale * e.sum() / n
    high = np.concatenate(([0], np.cumsum(e > threshold)))
    t = np.arange(n)
    lo = np.maximum(t - int(frames_context), 0)
    hi = np.minimum(t + int(frames_context) + 1, n)
    return (high[hi] - high[lo]) >= (hi - lo) * proportion_threshold
