"""Reading and checking audio (``soundfile``): one channel, at the expected rate, in Kaldi's scale.

Decisions (each failure is an :class:`AudioError` naming the file; nothing is written):

* **Sample rate**: refused unless it is the expected one (as Kaldi's ``compute-mfcc-feats``
  refuses a wav whose rate differs from ``--sample-frequency``).  Resampling silently would hide
  a data problem and change the features; the message says how to resample
  (``sox in.wav -r 16000 out.wav``).
* **Channels**: ``channel`` (0-based) picks one channel of a multi-channel file. Without one
  (None), as Kaldi's ``--channel=-1``, a mono file is expected: of a multi-channel file the
  first (left) channel is used with a :class:`MultiChannelWarning` (Kaldi warns too; the other
  channel may be the other speaker of a conversation). A channel the file does not have is an
  error. The file is decoded a block at a time into one array allocated once from the header's
  frame count, and only that channel is kept: the memory used is that of one channel, 8 bytes a
  sample (plus a 4 MiB block).
* **Size**: a compressed file can expand without bound (a 58 kB FLAC of 20 minutes of constant
  signal holds 19 million samples), so the samples to decode are counted from the header
  *before* decoding and refused beyond ``max_utterance_bytes`` (default
  :data:`~emkit.io.untrusted.MAX_UTTERANCE_BYTES`, 2 GiB: 4.6 hours at 16 kHz), counted as
  8 bytes a sample of the kept channel, the limit of every feature reader of emkit.  A segment
  counts its own samples only: a long recording can be cut into utterances by a ``segments``
  file.
* **Scale**: samples are returned as float64 in the 16-bit integer range (``-32768 .. 32767``),
  the values Kaldi reads from a 16-bit wav, so energies and the VAD threshold mean what they
  mean in Kaldi, whatever the file's sample format.
* **Bad content**: not audio (libsndfile cannot open it), data that cannot be decoded (a
  truncated FLAC), empty (no sample), NaN or infinite
  samples (float files), only digital silence (every sample 0), and clipping: more than
  ``max_clipped`` of the samples at (or beyond) full scale (for mu-law and A-law, the codec's
  loudest sample, 0.98 and 0.984 of the 16-bit full scale; for 8-bit PCM, 127/128).  Float samples (a float WAV) are read
  as stored, full scale 1.0: when those beyond [-1, 1] make too many count as clipped, the error
  says so and gives the largest magnitude (unscaled 16-bit values stored as floats reach
  thousands; a float sample beyond 32768, no audio at any scale, is refused whatever their
  number); Kaldi reads PCM (integer) WAV only and refuses a float WAV.  A WAV holding
  fewer samples than its header declares (truncated; for a block codec, ADPCM or GSM 6.10, fewer
  bytes of data) is read with a ``UserWarning``, as Kaldi warns; a size a streaming writer left unknown (data size 0xFFFFFFFF, RIFF size 0 or
  0xFFFFFFFF) is not a truncation.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .._caller_warnings import warn_at_caller
from .._describe import describe
from ..io.untrusted import (MAX_UTTERANCE_BYTES, FeatureError, check_limit, file_size,
                             open_regular, show_path)
from ._wav_header import read_header, warn_truncated, wav_format

__all__ = ["AudioError", "read_audio", "INT16_SCALE", "require", "MAX_CHANNELS", "check_channel"]

INT16_SCALE = 32768.0
_FULL_SCALE = 32767.0 / 32768.0  # a sample this loud (or louder) counts as clipped
#: the loudest positive sample of the formats that never reach _FULL_SCALE: mu-law decodes to at
#: most 32124/32768, A-law 32256/32768 (the G.711 codecs of 8 kHz telephone audio), 8-bit PCM
#: (unsigned in WAV, signed in AIFF and FLAC) to 127/128, so their clipped samples would not count
_CODEC_FULL_SCALE = {"ULAW": 32124.0 / 32768.0, "ALAW": 32256.0 / 32768.0,
                     "PCM_U8": 127.0 / 128.0, "PCM_S8": 127.0 / 128.0}
_BLOCK_VALUES = 1 << 19  # samples (of all channels) decoded at a time: 4 MiB of float64
#: Channels libsndfile opens at most (its SF_MAX_CHANNELS: 1024 since 1.0.26, 256 before): a
#: larger channel number is no file's
MAX_CHANNELS = 1024
_CHECK_VALUES = 1 << 20  # samples checked at a time (8 MiB of float64, 1 MiB of booleans)
_UNKNOWN = 2**63 - 1  # the frame count libsndfile gives for a file whose header has none
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # libsndfile returns these samples as stored, unscaled
#: the largest float sample magnitude accepted (a few beyond 1.0 pass as clipped): beyond it a
#: sample is not audio at any scale, and one of 1e300 would become inf in the 16-bit scale
_MAX_FLOAT_SAMPLE = INT16_SCALE


class MultiChannelWarning(UserWarning):
    """A multi-channel file read without a chosen channel: its first channel was used."""


class AudioError(FeatureError):
    """An audio input exists but cannot be used; the message names the file."""


def require(module: str):
    """Import ``module`` of the ``audio`` extra, or fail saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"emkit's audio features need the {module!r} package: install the "
                          "extra with pip install 'emkit[audio]'") from None


def _open(file, path: str, start: float | None, end: float | None, sample_rate: int,
          channel: int | None, max_bytes: int):
    """(float64 samples of ``channel`` in the segment, where, whether the file holds floats, the
    magnitude of a sample at full scale) of ``file``, the checked file ``path`` open to read bytes
    (libsndfile reads its descriptor: the path is not opened again).

    The output is allocated once, from the header's frame count (checked against ``max_bytes``
    first), and filled a block at a time keeping the one channel: the other channels of a long
    recording (which a small compressed file can hold) are never all in memory.
    """
    sf = require("soundfile")
    header = read_header(file)
    # libsndfile reads the descriptor from where it stands (a seek of the buffered file within
    # what it has read would leave it there)
    os.lseek(file.fileno(), 0, os.SEEK_SET)
    opened = None  # the format libsndfile found: a failure after the open is one of its data
    try:
        # libsndfile gets a descriptor of its own to close: 1.2.0 (soundfile 0.12's wheels) closed
        # the one it was given when it could not open it, closefd=False or not
        with sf.SoundFile(os.dup(file.fileno()), closefd=True) as f:
            opened = f"{f.format} ({f.subtype})"
            rate, n, n_channels = int(f.samplerate), f.frames, f.channels
            floats = f.subtype in _FLOAT_SUBTYPES
            full_scale = _CODEC_FULL_SCALE.get(f.subtype, _FULL_SCALE)
            channel = _check_format(path, rate, n_channels, sample_rate, channel)
            if n >= _UNKNOWN:
                raise AudioError(f"{show_path(path)}: the header does not give the number of samples (a "
                                 "FLAC written as a stream?); re-encode the file (e.g. 'sox "
                                 "in.flac out.flac')")
            if f.format in ("WAV", "WAVEX"):  # (WAVEX: an extensible header)
                warn_truncated(path, n, header)
            first, last, where = _segment(rate, n, start, end, path)
            _check_size(last - first, rate, where, max_bytes)
            if first and not f.seekable():  # GSM 6.10 in WAV: decoded from the start only
                _skip(f, first, n_channels)
            elif first:
                f.seek(first)
            samples = np.empty(last - first)
            buffer = np.empty((max(1, min(_BLOCK_VALUES // n_channels, len(samples))),
                               n_channels))
            done = 0
            while done < len(samples):
                got = f.read(dtype="float64", always_2d=True,
                             out=buffer[:min(len(samples) - done, len(buffer))])
                if not len(got):  # fewer frames than the header declares
                    break
                samples[done:done + len(got)] = got[:, channel]
                done += len(got)
    except AudioError:
        raise
    except (RuntimeError, TypeError, ValueError) as exc:  # libsndfile's errors are RuntimeErrors
        reason = str(exc).split(":")[-1].strip() or type(exc).__name__
        if opened is not None:
            raise AudioError(f"{show_path(path)}: its {opened} audio cannot be decoded (a "
                             f"truncated or damaged file?; libsndfile says: {reason}); replace "
                             "it with a complete copy, or leave it out") from None
        found = wav_format(header) or "expected WAV or FLAC"  # (a WAV: the format it holds)
        raise AudioError(f"{show_path(path)}: not a readable audio file ({found}; libsndfile "
                         f"says: {reason})") from None
    if done < len(samples):
        samples.resize(done, refcheck=False)  # the array is ours alone: shrunk in place
    return samples, where, floats, full_scale


def _skip(f, frames: int, n_channels: int) -> None:
    """Decode and drop the next ``frames`` frames of ``f`` (a file libsndfile cannot seek in), a
    block at a time."""
    block = np.empty((max(1, min(_BLOCK_VALUES // n_channels, frames)), n_channels))
    while frames > 0:
        got = f.read(dtype="float64", always_2d=True, out=block[:min(frames, len(block))])
        if not len(got):  # fewer frames than the header declares: the segment holds none
            return
        frames -= len(got)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else \
        f"{minutes // 60} h {minutes % 60} min {seconds} s"


def _check_size(count: int, rate: int, where: str, max_bytes: int) -> None:
    """Refuse, before decoding, more samples than ``max_bytes`` holds at 8 bytes a sample."""
    if count * 8 > max_bytes:
        raise AudioError(f"{where}: {_duration(count / rate)} of audio ({count} samples, "
                         f"{count * 8} bytes as float64) exceeds max_utterance_bytes="
                         f"{max_bytes}; cut the recording into utterances (a Kaldi segments "
                         "file), or raise max_utterance_bytes (read_audio, FeatureConfig) if "
                         "the file is trusted")


def _check_format(path, rate, n_channels, sample_rate, channel):
    if rate != sample_rate:
        raise AudioError(f"{show_path(path)}: sample rate is {rate} Hz, expected {sample_rate} Hz; resample "
                         f"it first (e.g. 'sox in.wav -r {sample_rate} out.wav' or 'ffmpeg -i "
                         f"in.wav -ar {sample_rate} out.wav'), or, when all the data is at "
                         f"{rate} Hz, give that rate (emkit features --sample-rate {rate}, a "
                         f"recipe's [features] sample_frequency = {rate})")
    if channel is None:
        if n_channels > 1:
            warn_at_caller(f"{show_path(path)}: has {n_channels} channels and no channel was chosen: "
                          "the first (channel 0) is used, as Kaldi does; choose one with channel "
                          "(--channel, [features] channel)", MultiChannelWarning)
        return 0
    if channel >= n_channels:
        raise AudioError(f"channel {channel} requested; {show_path(path)} has {n_channels} "
                         f"channel{'s' if n_channels > 1 else ''} (channels are numbered from 0)")
    return channel


def check_channel(channel) -> int | None:
    """``channel`` as an int, or None; a TypeError or ValueError naming it unless it is None or
    a channel number from 0 to ``MAX_CHANNELS - 1``."""
    if channel is None:
        return None
    expected = f"channel must be None or a channel number from 0 to {MAX_CHANNELS - 1}"
    if isinstance(channel, bool) or not isinstance(channel, numbers.Integral):
        raise TypeError(f"{expected}; got {type(channel).__name__} {describe(channel)}")
    if not 0 <= channel < MAX_CHANNELS:
        raise ValueError(f"{expected} (libsndfile opens no file of more than {MAX_CHANNELS} "
                         f"channels); got {describe(channel)}")
    return int(channel)


def read_audio(path, *, sample_rate: int = 16000, channel: int | None = None, start: float | None = None,
               end: float | None = None, max_clipped: float = 0.01,
               max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> np.ndarray:
    """The samples of one channel of an audio file, in the 16-bit integer range.

    Samples are float64 in ``-32768 .. 32767`` (what Kaldi reads from a 16-bit wav, whatever the
    file's sample format), so energies and the VAD threshold mean what they mean in Kaldi.

    Parameters
    ----------
    path : str or path-like
        Any file libsndfile reads (``.wav``, ``.flac``...).
    sample_rate : int, default 16000
        The rate the file must have (no silent resampling, as Kaldi's ``compute-mfcc-feats``).
    channel : int or None
        0-based (0: the first or left channel), at most ``MAX_CHANNELS - 1`` (1023: libsndfile
        opens no file with more channels).  None expects mono and takes the first channel
        of a multi-channel file with a :class:`MultiChannelWarning`, as Kaldi does.  Only that
        channel is kept in memory.
    start, end : float or None
        A segment, in seconds, as Kaldi's ``segments`` file cuts (``end`` None or negative: to
        the end); it may end at most 0.5 s after the recording.
    max_clipped : float, default 0.01
        The largest fraction of samples at full scale accepted.
    max_utterance_bytes : int
        Bound on the samples decoded (8 bytes each, counted from the header before decoding;
        of the segment only when ``start``/``end`` cut one).

    Returns
    -------
    ndarray of shape (n_samples,), float64

    Raises
    ------
    TypeError, ValueError
        ``channel`` not None or an integer from 0 to ``MAX_CHANNELS - 1``, before any file is
        opened.
    FileNotFoundError
        A missing file.
    AudioError
        Naming the file: another sample rate, a channel the file does not have, a file
        libsndfile cannot read, no sample, NaN or infinite samples, only digital silence, too
        many clipped samples, or more samples than ``max_utterance_bytes`` holds.
    """
    max_utterance_bytes = check_limit(max_utterance_bytes)
    channel = check_channel(channel)
    path = os.fspath(path)
    try:
        file = open_regular(path)  # a pipe, device or directory is refused, never read
    except FileNotFoundError:
        raise FileNotFoundError(f"no such audio file: {show_path(path)}") from None
    except FeatureError as exc:
        raise AudioError(str(exc)) from None
    with file:
        if file_size(file) == 0:
            raise AudioError(f"{show_path(path)}: the file is empty (0 bytes)")
        samples, where, floats, full_scale = _open(file, path, start, end, sample_rate, channel,
                                                   max_utterance_bytes)
    samples = check_samples(samples, where, max_clipped=max_clipped, floats=floats,
                            full_scale=full_scale)
    samples *= INT16_SCALE
    return samples


def _segment(rate, n, start, end, path):
    """(first, last sample, description) of the segment ``start``..``end`` seconds."""
    if start is None and (end is None or end < 0):
        return 0, n, show_path(path)
    start = 0.0 if start is None else start
    to_end = end is None or end < 0
    where = f"{show_path(path)} [{start:g}s to {'end' if to_end else f'{end:g}s'}]"
    if not math.isfinite(start) or not (to_end or math.isfinite(end)):
        raise AudioError(f"{where}: start and end must be finite numbers of seconds; got start "
                         f"{start!r} and end {end!r}")
    if start < 0 or not (to_end or start < end):
        raise AudioError(f"{where}: a segment needs 0 <= start < end; got start {start!r} and "
                         f"end {end!r}")
    # compared as floats first: a huge time (1e308 s) would overflow int(round(t * rate))
    if start * rate >= n - 0.5:
        raise AudioError(f"{where}: the segment starts after the end of the recording "
                         f"({n / rate:.3f}s long)")
    if not to_end and end * rate - n > 0.5 * rate:
        raise AudioError(f"{where}: the segment ends {end - n / rate:.3f}s after the "
                         f"recording ({n / rate:.3f}s long), more than the 0.5 s allowed (as "
                         "Kaldi's extract-segments --max-overshoot); correct its end, or give "
                         "-1 for the end of the recording")
    first = int(round(start * rate))
    last = n if to_end else min(n, int(round(end * rate)))
    if last <= first:
        raise AudioError(f"{where}: the segment holds no sample at {rate} Hz")
    return first, last, where


def check_samples(samples: np.ndarray, where: str, *, max_clipped: float = 0.01,
                  floats: bool = False, full_scale: float = _FULL_SCALE) -> np.ndarray:
    """``samples`` (float, full scale 1.0) unchanged, or an :class:`AudioError` about ``where``.

    ``floats``: the file stores float samples, read as they are: too many beyond [-1, 1] are
    reported as such (with the largest magnitude) rather than as clipping, and any beyond 32768
    (not audio at any scale; inf once scaled) is refused.  ``full_scale``: a
    sample of this magnitude or more counts as clipped (the format's loudest, for mu-law,
    A-law and 8-bit PCM).
    """
    n = samples.shape[0]
    if n == 0:
        raise AudioError(f"{where}: the audio is empty (no sample)")
    bad = clipped = beyond = huge = 0
    peak = 0.0
    sound = False
    for i in range(0, n, _CHECK_VALUES):  # in chunks: no temporary the size of the audio
        chunk = samples[i:i + _CHECK_VALUES]
        bad += chunk.size - int(np.count_nonzero(np.isfinite(chunk)))
        sound = sound or bool(chunk.any())
        clipped += int(np.count_nonzero(chunk >= full_scale))
        clipped += int(np.count_nonzero(chunk <= -full_scale))
        if floats:
            beyond += int(np.count_nonzero(chunk > 1.0)) + int(np.count_nonzero(chunk < -1.0))
            huge += int(np.count_nonzero(chunk > _MAX_FLOAT_SAMPLE))
            huge += int(np.count_nonzero(chunk < -_MAX_FLOAT_SAMPLE))
            peak = max(peak, float(chunk.max()), -float(chunk.min()))
    if bad:
        raise AudioError(f"{where}: {bad} of {n} samples are NaN or infinite")
    if huge:
        raise AudioError(f"{where}: {huge} of {n} float samples are beyond {_MAX_FLOAT_SAMPLE:g} "
                         f"in magnitude (up to {peak:.6g}): not audio at any scale (float audio "
                         "has full scale 1.0; even 16-bit values stored unscaled stay within it)")
    if not sound:
        raise AudioError(f"{where}: the audio is digital silence (every one of its {n} samples "
                         "is 0)")
    if clipped > max_clipped * n and beyond:
        raise AudioError(_not_full_scale(where, n, beyond, peak, clipped, max_clipped))
    if clipped > max_clipped * n:
        raise AudioError(f"{where}: the audio is clipped: {clipped} of {n} samples "
                         f"({100 * clipped / n:.2f}%) are at full scale, more than the "
                         f"{100 * max_clipped:g}% allowed (max_clipped / --max-clipped)")
    return samples


def _not_full_scale(where, n, beyond, peak, clipped, max_clipped) -> str:
    """The message for float samples beyond [-1, 1]: unscaled data rather than clipped sound."""
    # far beyond a float signal's overshoot, within the 16-bit range: integer values as floats
    unscaled = " (16-bit values stored as floats unscaled? divide them by 32768)" \
        if 256 < peak <= INT16_SCALE else ""
    return (f"{where}: the float samples are not in [-1, 1], the full scale of float audio: "
            f"{beyond} of {n} are beyond it, up to {peak:.6g} in magnitude{unscaled}. Float "
            f"samples are read as stored (integer ones are scaled to [-1, 1]), so {clipped} "
            f"({100 * clipped / n:.2f}%) count as clipped, more than the {100 * max_clipped:g}% "
            "allowed (max_clipped / --max-clipped); Kaldi reads PCM (integer) WAV only and "
            "refuses float WAV")
