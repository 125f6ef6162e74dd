"""Kaldi-compatible MFCC and filterbank features through ``kaldi-native-fbank``.

Why kaldi-native-fbank and not ``torchaudio.compliance.kaldi``: kaldi-native-fbank is a small
C++ port of Kaldi's own feature code (a wheel of a few hundred kB with no dependency), gives
Kaldi's numbers, and is actively maintained (k2-fsa, used by sherpa-onnx); torchaudio's version
needs PyTorch (hundreds of MB) for what is, here, a pre-processing step, and torchaudio has
been moving its Kaldi compatibility code to maintenance mode.

Samples are expected in the 16-bit integer scale (what Kaldi reads from a wav, see
:func:`emkit.audio.read_audio`).  Options are Kaldi's (``compute-mfcc-feats`` /
``compute-fbank-feats``) with their defaults, except ``dither``: 0 here (Kaldi: 1.0), so that
the features depend on the audio alone.  A dither is added by emkit, not kaldi-native-fbank
(which seeds its noise at random): the noise is drawn from a generator seeded by the
utterance's id (and a seed, 0 by default), so the same command gives the same features (see
:mod:`._dither`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._describe import describe
from .._validation import check_field_types
from ._dither import check_dither_seed, dithered_frames, plain_frames
from ._energy import frame_log_energy, libm_logf, matches_library
from ._read import require

__all__ = ["KaldiOptions", "check_options", "compute_kaldi_features",
           "features_and_log_energy", "log_energy"]

KINDS = ("mfcc", "fbank")
WINDOWS = ("povey", "hamming", "hanning", "rectangular", "blackman")
#: Longest frame accepted, ms.  Speaker and speech features use frames of 20 to 50 ms (Kaldi's
#: default is 25 ms); kaldi-native-fbank's cost grows with the square of the frame length and it
#: does not return to Python meanwhile (a 16 s frame took 85 s and ignored SIGTERM), so a frame
#: of more than one second is taken for a mistake (seconds given for ms) and refused.
MAX_FRAME_LENGTH_MS = 1000.0
#: Most samples in one frame: 1000 ms at 131 kHz, 25 ms at 5.2 MHz.  Without it a mistyped
#: sample frequency (1e12 in a Kaldi options file) made the options check allocate hundreds of
#: GiB for one frame; a frame of 2**20 samples took 19 s to check.
MAX_FRAME_SAMPLES = 2**17


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _frame_samples(sample_frequency: float, ms: float) -> int:
    """Samples in ``ms`` milliseconds, as kaldi-native-fbank's ``WindowSize``/``WindowShift``
    count them: ``samp_freq * 0.001f * ms`` in float32, one product at a time, rounded down.

    (In double, 274 frame lengths from 100 to 1000 ms in steps of 0.01 ms at 11025, 22050 and
    44100 Hz came out one sample short of the library's frame: emkit's frames and frame counts
    were not the library's.)"""
    exact = sample_frequency * 0.001 * ms
    if not exact < 2**31 or max(sample_frequency, ms) > _FLOAT32_MAX:
        return int(exact)  # past the library's int32 and float32: refused by _check_frame
    f32 = np.float32
    return int(f32(sample_frequency) * f32(0.001) * f32(ms))


@dataclass(frozen=True)
class KaldiOptions:
    """Frame, mel and cepstral options, named as Kaldi's command-line options.

    Defaults are Kaldi's (``compute-mfcc-feats`` / ``compute-fbank-feats``) except ``dither``:
    0 here, so that the features depend on the audio alone (Kaldi's default is 1).

    Parameters
    ----------
    kind : {"mfcc", "fbank"}
        ``"mfcc"``: ``num_ceps`` coefficients, the first replaced by the log energy when
        ``use_energy``; ``"fbank"``: ``num_mel_bins`` log mel energies, plus a leading log energy
        column when ``use_energy``.
    sample_frequency : float
        Sample rate of the audio, in Hz: a whole number (8000 or 8000.0).
    frame_length, frame_shift : float
        Frame length and frame shift, in ms: one sample at least, and a frame of at most
        :data:`MAX_FRAME_LENGTH_MS` (1000 ms) and :data:`MAX_FRAME_SAMPLES` samples.
    dither : float
        Dithering noise (16-bit scale): ``dither * N(0, 1)`` added to each sample of each
        frame, drawn from a generator seeded by the utterance's id and the ``dither_seed`` of
        :func:`compute_kaldi_features` (the same noise every run); 0: none, the features depend
        on the audio alone.
    preemphasis_coefficient : float in [0, 1]
        Pre-emphasis ``x[t] - c * x[t-1]``.
    remove_dc_offset : bool
        Subtract each frame's mean.
    window_type : {"povey", "hamming", "hanning", "rectangular", "blackman"}
    round_to_power_of_two : bool
        Pad each frame to a power of two for the FFT.
    snip_edges : bool
        Only frames that fit in the audio (else the number of frames depends on the frame shift
        only, and the audio is reflected at its ends).
    num_mel_bins : int
        Number of mel filters (>= 3).
    low_freq, high_freq : float
        Cut-offs of the mel filters, in Hz; ``high_freq <= 0`` is an offset from the Nyquist
        frequency.
    num_ceps : int
        MFCC: number of cepstra (at most ``num_mel_bins``).
    use_energy : bool or None
        Log energy as a feature (None: Kaldi's default, True for mfcc and False for fbank).
    raw_energy : bool
        The energy of the frame before pre-emphasis and windowing.
    energy_floor : float >= 0
        Floor on the energy (0: none).
    cepstral_lifter : float >= 0
        MFCC: liftering coefficient (0: none).  Every float option must be finite.
    """

    kind: str = "mfcc"
    sample_frequency: float = 16000.0
    frame_length: float = 25.0  # ms
    frame_shift: float = 10.0  # ms
    dither: float = 0.0
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    num_mel_bins: int = 23
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from the Nyquist frequency
    num_ceps: int = 13
    use_energy: bool | None = None  # None: Kaldi's default (True for mfcc, False for fbank)
    raw_energy: bool = True
    energy_floor: float = 0.0
    cepstral_lifter: float = 22.0

    def __post_init__(self):
        check_field_types(self)
        for name in ("dither", "preemphasis_coefficient", "low_freq", "high_freq",
                     "energy_floor", "cepstral_lifter"):  # NaN would pass the checks below
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number; got "
                                 f"{describe(getattr(self, name))}")
        for name in ("energy_floor", "cepstral_lifter"):  # (0: none)
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {describe(getattr(self, name))}")
        if not 0.0 <= self.preemphasis_coefficient <= 1.0:
            raise ValueError("preemphasis_coefficient must be in [0, 1] (Kaldi's range); got "
                             f"{describe(self.preemphasis_coefficient)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {describe(self.kind)}")
        if not all(math.isfinite(v) and v > 0
                   for v in (self.sample_frequency, self.frame_length, self.frame_shift)):
            raise ValueError("sample_frequency, frame_length and frame_shift must be positive "
                             "finite numbers; "
                             f"got {describe(self.sample_frequency)}, "
                             f"{describe(self.frame_length)} and {describe(self.frame_shift)}")
        if not float(self.sample_frequency).is_integer():  # (read_audio compares whole Hz)
            raise ValueError(f"sample_frequency must be a whole number of Hz, as an audio file's "
                             f"rate is; got {describe(self.sample_frequency)}")
        self._check_frame()
        # (kaldi-native-fbank allocates the bins before it checks them against the FFT size:
        # std::bad_alloc for 2**31 - 1, a TypeError of its binding past a C int)
        if not 3 <= self.num_mel_bins <= MAX_FRAME_SAMPLES:
            raise ValueError(f"num_mel_bins must be between 3 and {MAX_FRAME_SAMPLES} (the FFT "
                             f"size of the longest frame accepted); got "
                             f"{describe(self.num_mel_bins)}")
        if self.kind == "mfcc" and not 1 <= self.num_ceps <= self.num_mel_bins:
            raise ValueError(f"num_ceps must be between 1 and num_mel_bins "
                             f"({self.num_mel_bins}); got {describe(self.num_ceps)}")
        nyquist = self.sample_frequency / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not 0 <= self.low_freq < high <= nyquist:
            raise ValueError(f"need 0 <= low_freq < high_freq <= {nyquist:g} (Nyquist; "
                             f"high_freq <= 0 is an offset from it); got low_freq "
                             f"{describe(self.low_freq)} and high_freq "
                             f"{describe(self.high_freq)}")
        if self.window_type not in WINDOWS:
            raise ValueError(f"window_type must be one of {WINDOWS}; got "
                             f"{describe(self.window_type)}")
        if self.dither < 0:
            raise ValueError(f"dither must be >= 0; got {describe(self.dither)}")

    def _check_frame(self):
        """Frame length and shift of one sample at least (a shift under one sample kills the
        process with SIGFPE inside kaldi-native-fbank), and a frame of at most
        :data:`MAX_FRAME_LENGTH_MS` and :data:`MAX_FRAME_SAMPLES`."""
        rate = self.sample_frequency
        for name in ("frame_length", "frame_shift"):
            value = getattr(self, name)
            n = _frame_samples(rate, value)
            if n < 1:
                raise ValueError(f"{name} must be at least one sample ({1000 / rate:g} ms at "
                                 f"sample_frequency {rate:g} Hz); got {describe(value)} ms, "
                                 f"which is {n} samples")
        if self.frame_length > MAX_FRAME_LENGTH_MS:
            raise ValueError(f"frame_length must be at most {MAX_FRAME_LENGTH_MS:g} ms (frames "
                             f"are ms, not seconds; Kaldi's default is 25 ms); got "
                             f"{describe(self.frame_length)} ms, which is "
                             f"{describe(_frame_samples(rate, self.frame_length))} samples")
        n = _frame_samples(rate, self.frame_length)
        if n > MAX_FRAME_SAMPLES:  # (worded so that no single option is blamed)
            raise ValueError(f"a frame of frame_length {self.frame_length:g} ms at "
                             f"sample_frequency {rate:g} Hz is {describe(n)} samples; at most "
                             f"{MAX_FRAME_SAMPLES} are accepted (is the sample frequency in Hz?)")

    @property
    def energy(self) -> bool:
        """Whether the log energy is a feature (``use_energy``, or Kaldi's default for ``kind``)."""
        return (self.kind == "mfcc") if self.use_energy is None else bool(self.use_energy)

    @property
    def frame_samples(self) -> int:
        """Samples in one frame (``frame_length`` ms at ``sample_frequency``)."""
        return _frame_samples(self.sample_frequency, self.frame_length)

    @property
    def shift_samples(self) -> int:
        """Samples from one frame to the next (``frame_shift`` ms at ``sample_frequency``)."""
        return _frame_samples(self.sample_frequency, self.frame_shift)

    def as_dict(self) -> dict:
        """The options as a dict.

        Returns
        -------
        dict
            ``{name: value}`` (``dataclasses.asdict``).
        """
        return asdict(self)


def _knf_options(opts: KaldiOptions, kind: str | None = None, energy: bool | None = None):
    knf = require("kaldi_native_fbank")
    kind = kind or opts.kind
    o = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
    f = o.frame_opts
    f.samp_freq = float(opts.sample_frequency)
    f.frame_length_ms = float(opts.frame_length)
    f.frame_shift_ms = float(opts.frame_shift)
    f.dither = float(opts.dither)
    f.preemph_coeff = float(opts.preemphasis_coefficient)
    f.remove_dc_offset = bool(opts.remove_dc_offset)
    f.window_type = opts.window_type
    f.round_to_power_of_two = bool(opts.round_to_power_of_two)
    f.snip_edges = bool(opts.snip_edges)
    m = o.mel_opts
    m.num_bins = int(opts.num_mel_bins)
    m.low_freq = float(opts.low_freq)
    m.high_freq = float(opts.high_freq)
    o.use_energy = opts.energy if energy is None else energy
    o.raw_energy = bool(opts.raw_energy)
    o.energy_floor = float(opts.energy_floor)
    if kind == "mfcc":
        o.num_ceps = int(opts.num_ceps)
        o.cepstral_lifter = float(opts.cepstral_lifter)
    return knf, o


def _accept(extractor, rate: float, samples: np.ndarray) -> None:
    """Hand ``samples`` (any shape, float32 in C order) to ``extractor``.

    The binding takes a sequence of floats, read one item at a time: a float32 array's items are
    numpy scalars, each then converted to a Python float (~45 ns a sample: for dithered frames
    laid end to end, about as long as the library's own computation); a memoryview of the same
    memory gives Python floats directly (~8 ns a sample), of the same float32 values."""
    flat = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
    extractor.accept_waveform(rate, memoryview(flat))


def _run(setups, samples, opts: KaldiOptions, dither_key: str, dither_seed: int,
         energy_logf=None) -> list[np.ndarray]:
    """The library's features of ``samples`` for each ``(knf, options, kind)`` of ``setups``,
    all fed the same frames; with a dither, emkit's dithered frames laid end to end (drawn
    once for all), which the library cuts back into the same frames (a shift of one frame
    length, no dither of its own).  With ``energy_logf`` (:func:`._energy.libm_logf`), the
    log energy ``(n_frames,)`` of those frames (:func:`._energy.frame_log_energy`) comes last."""
    check_dither_seed(dither_seed)
    samples = np.asarray(samples)
    if samples.ndim != 1:  # (else the rows of a multi-channel array, read one after the other)
        raise ValueError(f"samples must be one channel, of shape (n_samples,); got shape "
                         f"{samples.shape}")
    extractors = []
    for knf, o, kind in setups:
        if opts.dither:
            f = o.frame_opts
            f.dither, f.frame_shift_ms, f.snip_edges = 0.0, f.frame_length_ms, True
        extractors.append(knf.OnlineMfcc(o) if kind == "mfcc" else knf.OnlineFbank(o))
    rate = float(opts.sample_frequency)
    shift = opts.shift_samples
    if opts.dither:
        blocks = dithered_frames(samples, opts.frame_samples, shift, opts.snip_edges,
                                 opts.dither, dither_key, dither_seed)
    else:
        blocks = [samples]
    energies = []
    for block in blocks:
        for extractor in extractors:
            _accept(extractor, rate, block)
        if energy_logf is not None and opts.dither:
            energies.append(frame_log_energy(block, opts, energy_logf))
    if energy_logf is not None and not opts.dither:
        energies = [frame_log_energy(frames, opts, energy_logf) for frames in
                    plain_frames(samples, opts.frame_samples, shift, opts.snip_edges)]
    results = []
    for extractor in extractors:
        extractor.input_finished()
        n = extractor.num_frames_ready
        out = np.empty((n, extractor.dim), dtype=np.float32)
        for i in range(n):  # the library hands out one frame at a time (a copy of its buffer)
            out[i] = extractor.get_frame(i)
        results.append(out)
    if energy_logf is not None:
        results.append(np.concatenate(energies) if energies else np.empty(0, np.float32))
    return results


def compute_kaldi_features(samples: np.ndarray, opts: KaldiOptions = KaldiOptions(), *,
                           dither_key: str = "", dither_seed: int = 0) -> np.ndarray:
    """Kaldi's MFCC or filterbank features of one utterance's samples.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        The audio, 16-bit scale (as :func:`read_audio` gives).
    opts : KaldiOptions
        The feature options (Kaldi's defaults, without dither).
    dither_key : str, default ""
        With ``opts.dither``: the utterance's id, which seeds its dither noise with
        ``dither_seed``.
    dither_seed : int, default 0
        From 0 to 2**64 - 1: the same pair, the same noise; 0 is the noise of emkit before the
        seed was an option.

    Returns
    -------
    ndarray of shape (n_frames, dim), float32
    """
    knf, o = _knf_options(opts)
    return _run([(knf, o, opts.kind)], samples, opts, dither_key, dither_seed)[0]


def check_options(opts: KaldiOptions) -> None:
    """Raise ``ValueError`` now for options the library refuses (e.g. too many mel bins).

    Frame lengths and shifts are checked by :class:`KaldiOptions` itself (this probe would not
    return from a shift under one sample: the library divides by zero).
    """
    opts._check_frame()
    probe = np.ones(max(opts.frame_samples, 1) * 2)
    try:
        compute_kaldi_features(probe, opts)
    except ValueError as exc:  # (its message names one option: the others decide too)
        raise ValueError(f"kaldi-native-fbank refuses these options: {exc} (num_mel_bins "
                         f"{opts.num_mel_bins}, low_freq {opts.low_freq:g}, high_freq "
                         f"{opts.high_freq:g}, sample_frequency {opts.sample_frequency:g} Hz, "
                         f"frame_length {opts.frame_length:g} ms)") from None


def log_energy(samples: np.ndarray, opts: KaldiOptions = KaldiOptions(), *,
               dither_key: str = "", dither_seed: int = 0) -> np.ndarray:
    """Kaldi's per-frame log energy (column 0 of an MFCC with ``use_energy``).

    The frames, and their dither noise, are those of :func:`compute_kaldi_features` with the
    same arguments.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        The audio, 16-bit scale.
    opts : KaldiOptions
        The frame options (and ``dither``, ``raw_energy``, ``energy_floor``).
    dither_key : str, default ""
        With ``opts.dither``: the utterance's id, which seeds its dither noise with
        ``dither_seed``.
    dither_seed : int, default 0
        From 0 to 2**64 - 1: the same pair, the same noise; 0 is the noise of emkit before the
        seed was an option.

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    return _run([_energy_setup(opts)], samples, opts, dither_key, dither_seed)[0][:, 0]


def _energy_setup(opts: KaldiOptions):
    """An MFCC of one coefficient, the log energy (column 0 of any MFCC with ``use_energy``)."""
    knf, o = _knf_options(opts, kind="mfcc", energy=True)
    o.num_ceps = 1
    return knf, o, "mfcc"


def features_and_log_energy(samples: np.ndarray, opts: KaldiOptions = KaldiOptions(), *,
                            dither_key: str = "", dither_seed: int = 0
                            ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compute_kaldi_features` ``(n_frames, dim)`` and :func:`log_energy` ``(n_frames,)``
    of ``samples``, the same bytes, in one run of kaldi-native-fbank where it can.

    The log energy is the column the library puts first with ``use_energy`` (after the dither
    and DC removal, before pre-emphasis and windowing with ``raw_energy``; floored at
    ``energy_floor``), computed alike by its MFCC and fbank code and independent of the other
    columns: an MFCC with ``use_energy`` has it, an fbank is computed with it and, without
    ``use_energy``, gives it up.  An MFCC without ``use_energy`` has c0 in its place, which that
    option would replace: its energies are computed by numpy from the same frames, with the
    library's float32 arithmetic (:func:`._energy.frame_log_energy`); where that cannot be
    shown to give the library's bytes (:func:`._energy.matches_library`), they take a second
    extractor (:func:`log_energy`'s), fed the same frames, so that the dither noise is drawn
    once.
    """
    if opts.kind == "mfcc" and not opts.energy and matches_library(opts):
        return tuple(_run([(*_knf_options(opts), "mfcc")], samples, opts, dither_key,
                          dither_seed, energy_logf=libm_logf()))
    if opts.kind == "mfcc" and not opts.energy:  # one draw of the dither, two extractors
        feats, energy = _run([(*_knf_options(opts), "mfcc"), _energy_setup(opts)], samples, opts,
                             dither_key, dither_seed)
        return feats, energy[:, 0].copy()
    knf, o = _knf_options(opts, energy=True)
    out = _run([(knf, o, opts.kind)], samples, opts, dither_key, dither_seed)[0]
    energy = out[:, 0].copy()
    return (out if opts.energy else np.ascontiguousarray(out[:, 1:])), energy
