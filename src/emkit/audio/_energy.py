"""Kaldi's log energy of frames, computed with numpy exactly as kaldi-native-fbank computes it.

An MFCC without ``use_energy`` has c0 where the log energy would be, so the VAD's energies cannot
come from the features' own run; this module computes them from the same frames instead of
running a second extractor.  The library (``ProcessWindow``, ``MfccComputer::Compute``) works in
float32, one operation at a time, and its machine code adds in order (its packed multiplies
round each product to float32 before the next sequential add), so:

- DC removal: the frame's sum added sample by sample in float32, divided by the length in
  float32, subtracted from every sample;
- ``raw_energy``: the energy is taken there, before pre-emphasis and window; otherwise after
  both (``x[i] - c * x[i-1]`` in float32, then the window, computed in double and rounded to
  float32 as the library does);
- the energy: the squares summed in order in float32, floored at float32's epsilon, and its
  log taken with the C library's ``logf``, the function the library calls.  numpy's float32
  log differs from it in the last bit for about 3% of frames, and a double log rounded to
  float32 for a few in 50,000 (glibc's ``logf`` is not correctly rounded), so no numpy log
  will do: ``logf`` is called through ctypes, and where it cannot be found the second
  extractor is kept (:func:`matches_library`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["frame_log_energy", "kaldi_window", "libm_logf", "matches_library"]

_EPSILON = np.float32(np.finfo(np.float32).eps)
#: kaldi-native-fbank's ``blackman_coeff``, a float (0.42 in double gives other windows).
_BLACKMAN = float(np.float32(0.42))


@lru_cache(maxsize=1)
def libm_logf():
    """The C library's ``logf`` as a Python callable, or None where ctypes cannot find it."""
    try:
        import ctypes
        logf = ctypes.CDLL(None).logf
    except (OSError, TypeError, AttributeError):  # (Windows: no CDLL(None))
        return None
    logf.restype, logf.argtypes = ctypes.c_float, [ctypes.c_float]
    return logf


def _window_value(window_type: str, a: float, i: int) -> float:
    if window_type == "hanning":
        return 0.5 - 0.5 * math.cos(a * i)
    if window_type == "hamming":
        return 0.54 - 0.46 * math.cos(a * i)
    if window_type == "povey":
        return math.pow(0.5 - 0.5 * math.cos(a * i), 0.85)
    if window_type == "blackman":
        return _BLACKMAN - 0.5 * math.cos(a * i) + (0.5 - _BLACKMAN) * math.cos(2 * a * i)
    return 1.0  # rectangular


@lru_cache(maxsize=8)
def kaldi_window(window_type: str, length: int) -> np.ndarray:
    """The window ``(length,)`` float32 of kaldi-native-fbank's ``GetWindow`` (read-only)."""
    a = 2 * math.pi / (length - 1) if length > 1 else math.inf  # (C: a division by zero)
    window = np.array([_window_value(window_type, a, i) for i in range(length)],
                      dtype=np.float32)
    window.flags.writeable = False
    return window


def _sequential_sum(frames: np.ndarray) -> np.ndarray:
    """Row sums ``(n,)`` of ``frames`` ``(n, length)`` float32, added in order in float32."""
    return np.cumsum(frames, axis=1, dtype=np.float32)[:, -1]


def frame_log_energy(frames: np.ndarray, opts, logf) -> np.ndarray:
    """Log energy ``(n,)`` float32 of each of ``frames`` ``(n, length)`` float32 (not changed),
    the bytes of column 0 of kaldi-native-fbank's MFCC with ``use_energy`` of those frames
    (``opts``: a :class:`KaldiOptions`; its dither is taken to be in the frames already)."""
    n, length = frames.shape
    if n == 0:
        return np.empty(0, dtype=np.float32)
    x = np.asarray(frames, dtype=np.float32)
    if opts.remove_dc_offset:
        x = x - (_sequential_sum(x) / np.float32(length))[:, None]
    if not opts.raw_energy:
        c = np.float32(opts.preemphasis_coefficient)
        if c != 0:
            shifted = np.empty_like(x)
            shifted[:, 1:] = x[:, :-1]
            shifted[:, 0] = x[:, 0]
            x = x - c * shifted
        x = x * kaldi_window(opts.window_type, length)
    energy = np.maximum(_sequential_sum(x * x), _EPSILON)
    out = np.fromiter(map(logf, energy.tolist()), dtype=np.float32, count=n)
    if opts.energy_floor > 0:
        floor = np.float32(logf(opts.energy_floor))
        out[out < floor] = floor
    return out


def _probe_frames(length: int) -> np.ndarray:
    """Frames ``(n, length)`` float32 (n from 4 to 384, about 2**18 samples in all) of
    16-bit-scale noise at many levels with DC offsets, digital silence and all but silent
    frames (energies at and near the epsilon floor)."""
    n = min(384, max(4, 2**18 // length))
    rng = np.random.default_rng(20240607)
    levels = np.exp(rng.uniform(0.0, np.log(20000.0), size=(n, 1)))
    frames = np.round(rng.standard_normal((n, length)) * levels
                      + rng.uniform(-500, 500, size=(n, 1)))
    quiet = slice(n // 16 + 1, n // 8 + 2)
    frames[:quiet.start] = 0.0
    frames[quiet] = rng.integers(-1, 2, size=(quiet.stop - quiet.start, length))
    return frames.astype(np.float32)


@lru_cache(maxsize=64)
def _matches(energy_options: tuple) -> bool:
    from ._kaldi_features import KaldiOptions, log_energy
    logf = libm_logf()
    if logf is None:
        return False
    opts = KaldiOptions(kind="mfcc", **dict(energy_options))
    frames = _probe_frames(opts.frame_samples)
    opts = KaldiOptions(**{**opts.as_dict(), "frame_shift": opts.frame_length})
    want = log_energy(frames.reshape(-1), opts)
    return want.tobytes() == frame_log_energy(frames, opts, logf).tobytes()


#: The options that :func:`frame_log_energy` depends on (with the frame length).
_ENERGY_OPTIONS = ("sample_frequency", "frame_length", "remove_dc_offset", "raw_energy",
                   "preemphasis_coefficient", "window_type", "energy_floor")


def matches_library(opts) -> bool:
    """Whether :func:`frame_log_energy` gives kaldi-native-fbank's bytes for ``opts``, checked
    once per process and energy options, on frames of noise (with another C library or another
    build of kaldi-native-fbank, the sums or ``logf`` could differ: the library is kept)."""
    return _matches(tuple((name, getattr(opts, name)) for name in _ENERGY_OPTIONS))
