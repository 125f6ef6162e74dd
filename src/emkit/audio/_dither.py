"""Reproducible dither: Kaldi's frames, each with its own Gaussian noise, drawn from a generator
seeded by the utterance's id.

kaldi-native-fbank dithers with a randomly seeded generator (other features each run), and
offers no hook into its per-frame processing.  So emkit cuts the frames itself, as Kaldi's
``ExtractWindow`` does (``snip_edges``; without it, the audio reflected at its ends), adds
``dither * N(0, 1)`` to every sample of every frame, as Kaldi's ``ProcessWindow`` does before
DC removal, energy, pre-emphasis and windowing, and hands kaldi-native-fbank the frames laid
end to end with a frame shift of one frame length and no dither of its own: each of its frames
is then exactly one dithered frame, so the result is Kaldi's dither, not an approximation of it
(only the pseudo-random numbers differ from Kaldi's).

The noise of an utterance is one stream of float32 standard normal draws, frame after frame:
numpy's generator gives the same stream whether it is drawn at once or block by block, so the
block size decides the memory used, not the numbers.

Cost: about twice the undithered features (60 s at 16 kHz, 25 ms frames every 10 ms: 0.22 s
against 0.12 s), from the 2.5 samples per sample of audio that overlapping frames hold: about
half the extra time is drawing their float32 normals (drawing into a buffer (``out=``) is no
faster), the other half is kaldi-native-fbank taking 2.5 times the samples (its binding
converts each one; a memoryview is the fastest sequence it takes).  Neither can be cut without
other noise (fewer draws) or other frames.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterator

import numpy as np

from .._describe import describe

__all__ = ["dither_generator", "frame_count", "dithered_frames", "plain_frames",
           "check_dither_seed", "MAX_DITHER_SEED"]

#: Samples of the frames dithered at a time (8 MB of float32; one frame at least).
BLOCK_SAMPLES = 2**21
#: Largest dither seed: any unsigned 64-bit integer (the seed is the 16-byte salt of the hash
#: of the utterance id, which would hold more).
MAX_DITHER_SEED = 2**64 - 1


def check_dither_seed(seed, name: str = "dither_seed") -> int:
    """``seed`` as an int; TypeError or ValueError naming ``name`` unless it is an integer from
    0 to :data:`MAX_DITHER_SEED`."""
    shown = describe(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer from 0 to 2**64 - 1; got "
                        f"{type(seed).__name__} {shown}")
    if not 0 <= seed <= MAX_DITHER_SEED:
        raise ValueError(f"{name} must be an integer from 0 to 2**64 - 1; got {shown}")
    return int(seed)


def dither_generator(key: str, seed: int = 0) -> np.random.Generator:
    """The noise generator of the utterance ``key``: seeded by a stable hash of the id and
    ``seed`` (the same noise in every run and process, whatever the other utterances; other ids
    or another seed, other noise).  ``seed`` is the hash's salt: 0, the salt of zeros, is the
    hash of the id alone (the noise of emkit before the seed was an option)."""
    salt = check_dither_seed(seed).to_bytes(16, "little")
    digest = hashlib.blake2b(b"emkit-dither\0" + key.encode("utf-8", "surrogateescape"),
                             digest_size=16, salt=salt).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def frame_count(n_samples: int, length: int, shift: int, snip_edges: bool) -> int:
    """Kaldi's ``NumFrames`` (flushed) of ``n_samples`` samples."""
    if snip_edges:
        return 0 if n_samples < length else 1 + (n_samples - length) // shift
    return (n_samples + shift // 2) // shift


def _reflected_frames(samples: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Frames ``(len(starts), length)`` starting at ``starts``, the audio reflected at its ends
    as often as needed (Kaldi's ``ExtractWindow``): for the few frames that reach past an end."""
    n_samples = samples.shape[0]
    index = starts[:, None] + np.arange(length)
    while True:
        low, high = index < 0, index >= n_samples
        if not (low.any() or high.any()):
            return samples[index]
        index = np.where(low, -index - 1, np.where(high, 2 * n_samples - 1 - index, index))


def dithered_frames(samples: np.ndarray, length: int, shift: int, snip_edges: bool,
                    dither: float, key: str, seed: int = 0) -> Iterator[np.ndarray]:
    """Blocks ``(n, length)`` float32 of the frames of ``samples`` ``(n_samples,)``, in order,
    each sample plus ``dither`` times a standard normal draw of :func:`dither_generator`
    (``key``, ``seed``)."""
    rng = dither_generator(key, seed)
    scale = np.float32(dither)

    def noise(n_frames):
        block = rng.standard_normal((n_frames, length), dtype=np.float32)
        block *= scale
        return block
    return _frame_blocks(samples, length, shift, snip_edges, noise)


def plain_frames(samples: np.ndarray, length: int, shift: int,
                 snip_edges: bool) -> Iterator[np.ndarray]:
    """Blocks ``(n, length)`` float32 of the frames of ``samples`` ``(n_samples,)``, in order,
    without dither (those of :func:`dithered_frames`, less the noise)."""
    return _frame_blocks(samples, length, shift, snip_edges,
                         lambda n_frames: np.zeros((n_frames, length), dtype=np.float32))


def _frame_blocks(samples, length, shift, snip_edges, start) -> Iterator[np.ndarray]:
    """The frames of ``samples``, block by block, each added to ``start(n_frames)``."""
    samples = np.asarray(samples, dtype=np.float32)
    n_samples = samples.shape[0]
    total = frame_count(n_samples, length, shift, snip_edges)
    # frame i starts at i * shift + offset (Kaldi, without snip_edges: centred on
    # i * shift + shift / 2); frames inside [inner_first, inner_end) lie within the audio
    offset = 0 if snip_edges else shift // 2 - length // 2
    inner_first = min(total, max(0, -(offset // shift)))
    inner_end = 0 if n_samples < length + offset else (n_samples - length - offset) // shift + 1
    inner_end = max(inner_first, min(total, inner_end))
    if inner_end > inner_first:  # a view: frame inner_first + k is row k
        inner = np.lib.stride_tricks.sliding_window_view(samples, length)[
            inner_first * shift + offset::shift]
    per_block = max(1, BLOCK_SAMPLES // length)
    for first in range(0, total, per_block):
        end = min(total, first + per_block)
        block = start(end - first)
        low, high = max(first, inner_first), min(end, inner_end)
        if low < high:
            block[low - first:high - first] += inner[low - inner_first:high - inner_first]
        edges = np.r_[first:min(end, inner_first), max(first, inner_end):end]
        if edges.size:
            block[edges - first] += _reflected_frames(samples, edges * shift + offset, length)
        yield block
