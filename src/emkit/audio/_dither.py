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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

__all__ = ["dither_generator", "frame_count", "dithered_frames"]

#: Samples of the frames cut and dithered at a time (8 MB of float32, 16 MB of int64 indices;
#: 5242 frames of 400 samples, one frame at least): the noise of an utterance depends on the
#: number of frames a block holds, so this must not change.
BLOCK_SAMPLES = 2**21


def dither_generator(key: str) -> np.random.Generator:
    """The noise generator of the utterance ``key``: seeded by a stable hash of the id (the same
    noise in every run and process, whatever the other utterances; other ids, other noise)."""
    digest = hashlib.blake2b(b"emkit-dither\0" + key.encode("utf-8", "surrogateescape"),
                             digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def frame_count(n_samples: int, length: int, shift: int, snip_edges: bool) -> int:
    """Kaldi's ``NumFrames`` (flushed) of ``n_samples`` samples."""
    if snip_edges:
        return 0 if n_samples < length else 1 + (n_samples - length) // shift
    return (n_samples + shift // 2) // shift


def dithered_frames(samples: np.ndarray, length: int, shift: int, snip_edges: bool,
                    dither: float, key: str) -> Iterator[np.ndarray]:
    """Blocks ``(n, length)`` float32 of the frames of ``samples`` ``(n_samples,)``, in order,
    each sample plus ``dither`` times a standard normal draw of :func:`dither_generator`."""
    samples = np.asarray(samples, dtype=np.float32)
    n_samples = samples.shape[0]
    total = frame_count(n_samples, length, shift, snip_edges)
    rng = dither_generator(key)
    offsets = np.arange(length)
    per_block = max(1, BLOCK_SAMPLES // length)
    for first in range(0, total, per_block):
        frames = np.arange(first, min(total, first + per_block))
        starts = frames * shift
        if not snip_edges:  # Kaldi: frame i centred on i * shift + shift / 2
            starts = starts + shift // 2 - length // 2
        index = starts[:, None] + offsets
        while True:  # reflect at the ends, as often as needed (Kaldi's ExtractWindow)
            low, high = index < 0, index >= n_samples
            if not (low.any() or high.any()):
                break
            index = np.where(low, -index - 1, np.where(high, 2 * n_samples - 1 - index, index))
        block = samples[index]
        noise = rng.standard_normal(block.shape, dtype=np.float32)
        block += np.float32(dither) * noise
        yield block
