"""From one utterance's audio to its features, and many utterances in parallel processes.

Order of the steps, as in Kaldi's speaker-recognition recipes (``compute-mfcc-feats``,
``compute-vad``, ``add-deltas``, ``apply-cmvn-sliding``, ``select-voiced-frames``): features;
VAD decisions from the log energy of the *raw* frames; deltas; CMVN over all frames (silence
included, as Kaldi does); then only the voiced frames are kept.

Several jobs are worker *processes* (joblib's loky: started fresh, not forked from a process
whose BLAS and thread pools are running, and without re-running the caller's main module):
kaldi-native-fbank's binding holds the GIL while it computes, so threads gave no speed-up
(measured: 1.30 s with 1 thread, 1.45 s with 2, on 8 x 20 s files).  One job runs in the calling
process.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._caller_warnings import warn_at_caller
from .._cpus import usable_cpus
from .._describe import describe
from .._progress import Progress, format_duration, plural
from .._validation import check_field_types, check_positive_int
from ..io.untrusted import MAX_UTTERANCE_BYTES, check_limit, open_regular, show_key, show_path
from ._cmvn import check_window, cmvn, sliding_cmvn
from ._deltas import add_deltas, delta_filters
from ._dither import check_dither_seed
from ._kaldi_features import KaldiOptions, compute_kaldi_features, features_and_log_energy
from ._read import MAX_CHANNELS, AudioError, MultiChannelWarning, read_audio, require
from ._sources import Utterance
from ._vad import compute_vad

logger = logging.getLogger("emkit")

__all__ = ["FeatureConfig", "extract_features", "extract_many", "processes_for",
           "SECONDS_PER_PROCESS"]

#: Audio (seconds) each worker process should have, at least, for ``emkit features``: starting
#: loky's processes costs more than it saves on a little audio (measured on 2 CPUs: 30 one-second
#: files 0.6 s with -j 1, 2.1 s with -j 2; 600 s of audio 2.6 s and 4.3 s: ~1.5 s to start the
#: workers, ~3.4 ms a second of audio), so a second process pays from ~900 s of audio on.
SECONDS_PER_PROCESS = 450.0

CMVN_MODES = ("none", "utterance", "sliding")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the features of an utterance.

    Defaults are those of Kaldi's tools, except ``kaldi.dither``: 0 here, so that the features depend
    on the audio alone (Kaldi's default is 1).  A dither's noise is drawn from a generator seeded
    by the utterance's id and ``dither_seed``.

    Parameters
    ----------
    kaldi : KaldiOptions
        MFCC/fbank options (frame length and shift in ms, frequencies in Hz).
    channel : int or None
        The channel of multi-channel files, from 0 (the first, left) to 1023 (libsndfile's
        most channels, ``MAX_CHANNELS - 1``).  None (or -1, Kaldi's
        spelling, stored as None): mono files are expected, and of a multi-channel file the first
        channel is used with a warning (Kaldi's default, ``--channel=-1``).
    max_clipped : float
        The largest fraction of samples at full scale accepted (1: no check).
    max_utterance_bytes : int
        The most samples decoded for one utterance, as float64 bytes (8 a sample; default 2 GiB,
        4.6 hours at 16 kHz), checked from the file's header before decoding: see
        :func:`read_audio`.
    delta_order, delta_window : int
        Deltas up to this order (0: none), over ``2 * delta_window + 1`` frames (``add-deltas``).
    vad : bool
        Keep only the voiced frames (energy VAD, ``compute-vad``).
    vad_energy_threshold, vad_energy_mean_scale, vad_frames_context, vad_proportion_threshold
        The VAD's ``energy_threshold``, ``energy_mean_scale``, ``frames_context`` (frames) and
        ``proportion_threshold``: see :func:`compute_vad`.
    cmvn : {"none", "utterance", "sliding"}
        Mean normalisation: none, per utterance (:func:`cmvn`) or over a sliding window
        (:func:`sliding_cmvn`, ``apply-cmvn-sliding``).
    cmn_window, min_cmn_window : int
        Sliding CMVN window, and its smallest size at the start when not centred, in frames.
    center : bool
        Sliding CMVN: the window is centred on the frame (else it ends there).
    norm_vars : bool
        Normalise the variances too (per-utterance and sliding CMVN).
    dither_seed : int
        With ``kaldi.dither``, the seed mixed with each utterance's id into the seed of its noise:
        an integer from 0 to 2**64 - 1.  The same seed gives the same features in every run,
        whatever the number of processes and the order of the utterances; another seed, other
        noise.  0 (the default) is the noise emkit drew before the seed was an option.
    """

    kaldi: KaldiOptions = field(default_factory=KaldiOptions)
    channel: int | None = None
    max_clipped: float = 0.01
    max_utterance_bytes: int = MAX_UTTERANCE_BYTES
    delta_order: int = 2
    delta_window: int = 2
    vad: bool = True
    vad_energy_threshold: float = 5.0
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 0
    vad_proportion_threshold: float = 0.6
    cmvn: str = "sliding"
    cmn_window: int = 600
    min_cmn_window: int = 100
    center: bool = False
    norm_vars: bool = False
    dither_seed: int = 0

    def __post_init__(self):
        check_field_types(self)
        check_dither_seed(self.dither_seed)
        if not isinstance(self.kaldi, KaldiOptions):
            raise TypeError(f"kaldi must be a KaldiOptions; got {type(self.kaldi).__name__}")
        if self.cmvn not in CMVN_MODES:
            raise ValueError(f"cmvn must be one of {CMVN_MODES}; got {describe(self.cmvn)}")
        if self.channel == -1:  # (an integer or None here: check_field_types refuses bools)
            # Kaldi's spelling of "no channel chosen": stored as None, so that the two configs
            # are equal, hash alike and give the same recipe stamps
            object.__setattr__(self, "channel", None)
        if self.channel is not None and not 0 <= self.channel < MAX_CHANNELS:
            raise ValueError(f"channel must be -1 or None (Kaldi's default: mono expected, the "
                             f"first channel of multi-channel audio) or a channel number from 0 "
                             f"to {MAX_CHANNELS - 1} (libsndfile opens no file of more than "
                             f"{MAX_CHANNELS} channels); got {describe(self.channel)}")
        if not 0.0 <= self.max_clipped <= 1.0:
            raise ValueError(f"max_clipped must be in [0, 1]; got {describe(self.max_clipped)}")
        check_limit(self.max_utterance_bytes)
        delta_filters(self.delta_order, self.delta_window,  # validates both
                      names=("delta_order", "delta_window"))
        try:  # compute_vad validates the VAD options; its messages start with their names
            compute_vad(np.zeros(1), **self._vad_options())
        except ValueError as exc:
            raise ValueError(f"vad_{exc}") from None
        for name in ("cmn_window", "min_cmn_window"):
            check_window(getattr(self, name), name)

    def _vad_options(self) -> dict:
        return dict(energy_threshold=self.vad_energy_threshold,
                    energy_mean_scale=self.vad_energy_mean_scale,
                    frames_context=self.vad_frames_context,
                    proportion_threshold=self.vad_proportion_threshold)


def extract_features(utterance, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """The features of one utterance: read, MFCC/fbank, VAD, deltas, CMVN as ``config`` says.

    Parameters
    ----------
    utterance : Utterance or str or path-like
        Dither noise is seeded by its id (by the path as given, for a path) and
        ``config.dither_seed``: the same call gives the same features.
    config : FeatureConfig
        The options (Kaldi's defaults, without dither).

    Returns
    -------
    ndarray of shape (n_frames, dim), float32

    Raises
    ------
    AudioError
        Naming the file: unusable audio, too short an utterance, one where VAD keeps no frame;
        for an utterance of a data directory's list, a missing audio file too.
    FileNotFoundError
        A missing audio file given by its path.
    """
    if not isinstance(utterance, Utterance):
        utterance = Utterance("", str(utterance))
    k = config.kaldi
    # a segments line's channel is that segment's (Kaldi's extract-segments cuts it out first)
    channel = config.channel if utterance.channel is None else utterance.channel
    try:
        samples = read_audio(utterance.path, sample_rate=int(k.sample_frequency),
                             channel=channel, start=utterance.start, end=utterance.end,
                             max_clipped=config.max_clipped,
                             max_utterance_bytes=config.max_utterance_bytes)
    except (AudioError, FileNotFoundError) as exc:  # (missing: a wav.scp entry, missing_ok)
        if utterance.origin is None:
            raise
        looked_for = utterance.looked_for if isinstance(exc, FileNotFoundError) else ""
        raise AudioError(f"{utterance.origin} (utterance {show_key(utterance.id)}): "
                         f"{exc}{looked_for}") from None
    if utterance.origin is not None:  # a wav.scp or segments line
        where = f"{utterance.origin} (utterance {show_key(utterance.id)}): {show_path(utterance.path)}"
    elif utterance.start is not None:
        where = f"{show_path(utterance.path)} (utterance {show_key(utterance.id)})"
    else:
        where = show_path(utterance.path)
    dither_key = utterance.id or utterance.path  # (a path alone: other files, other noise)
    if config.vad:  # (the VAD's energies from the same run where the library allows)
        feats, energy = features_and_log_energy(samples, k, dither_key=dither_key,
                                                dither_seed=config.dither_seed)
    else:
        feats = compute_kaldi_features(samples, k, dither_key=dither_key,
                                       dither_seed=config.dither_seed)
    if feats.shape[0] == 0:
        if k.snip_edges:
            needed = f"a frame needs {k.frame_samples}"
        else:  # Kaldi: (n + shift / 2) / shift frames, the audio reflected at its ends
            shift = k.shift_samples
            needed = f"without snip_edges, one frame needs half a frame shift: {shift - shift // 2}"
        raise AudioError(f"{where}: too short for one frame ({samples.shape[0]} samples; "
                         f"{needed})")
    if config.vad:
        voiced = compute_vad(energy, **config._vad_options())
        if not voiced.any():
            raise AudioError(f"{where}: all silence: the VAD kept none of its {feats.shape[0]} "
                             "frames (lower its energy threshold, --vad-energy-threshold or "
                             "vad_energy_threshold in a recipe's [features], or turn it off, "
                             "--no-vad or vad = false)")
    out = feats.astype(np.float64)
    if config.delta_order:
        out = add_deltas(out, config.delta_order, config.delta_window)
    if config.cmvn == "utterance":
        out = cmvn(out, norm_vars=config.norm_vars)
    elif config.cmvn == "sliding":
        out = sliding_cmvn(out, config.cmn_window, config.min_cmn_window, config.center,
                           config.norm_vars)
    if config.vad:
        out = out[voiced]
    return out.astype(np.float32)


def _attempt(utterance, config):
    """(features or None, warnings, AudioError or None) of one utterance: run in a worker process,
    its warnings and its failure are given back, to be shown (or raised) by the calling process in
    the order of the utterances (a worker's own stderr output is not the caller's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            features, error = extract_features(utterance, config), None
        except AudioError as exc:
            features, error = None, exc
    return features, [(str(w.message), w.category) for w in caught], error


def _audio_seconds(utterances, enough: float) -> float:
    """Seconds of audio of ``utterances`` (a segment's from its times, a file's from its header),
    counted until ``enough``; a header that cannot be read counts nothing (its worker says why)."""
    sf = require("soundfile")
    total, lengths = 0.0, {}
    for u in utterances:
        if u.end is None and u.path not in lengths:
            try:  # read as read_audio reads it: a named pipe would block libsndfile's open
                with open_regular(u.path) as f, sf.SoundFile(f.fileno(), closefd=False) as info:
                    lengths[u.path] = info.frames / info.samplerate
            except (OSError, RuntimeError, TypeError, ValueError, ZeroDivisionError):
                lengths[u.path] = 0.0
        end = lengths[u.path] if u.end is None else u.end
        total += max(0.0, end - (u.start or 0.0))
        if total >= enough:
            break
    return total


def processes_for(utterances, jobs: int, seconds_per_process: float | None) -> int:
    """How many processes :func:`extract_many` uses.

    Parameters
    ----------
    utterances : sequence of Utterance
    jobs : int
        The most processes.
    seconds_per_process : float or None
        At most one process per that many seconds of audio (counted from the files' headers
        and the segments' times); None: no such limit.

    Returns
    -------
    int
        At least 1, at most ``jobs``, one per utterance and one per CPU this process may use
        (feature extraction keeps a CPU busy, so more processes only share
        the same CPUs; the ``emkit`` logger warns when ``jobs`` was cut down for that).
    """
    utterances = list(utterances)
    asked = check_positive_int(jobs, "jobs")
    jobs = min(asked, max(1, len(utterances)))
    if seconds_per_process is not None and jobs > 1:
        jobs = _processes_for_audio(utterances, jobs, seconds_per_process)
    cpus = usable_cpus()
    if jobs > cpus:
        logger.warning("features: jobs=%d is more processes than the %d CPU%s this process may "
                       "use: using %d", asked, cpus, "" if cpus == 1 else "s", cpus)
    return min(jobs, cpus)


def _processes_for_audio(utterances, jobs: int, seconds_per_process) -> int:
    """``jobs`` cut down to one process per ``seconds_per_process`` of audio."""
    if isinstance(seconds_per_process, bool) or not (
            isinstance(seconds_per_process, (int, float)) and math.isfinite(seconds_per_process)
            and seconds_per_process > 0):
        raise ValueError("seconds_per_process must be a positive finite number of seconds or "
                         f"None; got {seconds_per_process!r}")
    seconds = _audio_seconds(utterances, jobs * seconds_per_process)
    return max(1, min(jobs, int(seconds // seconds_per_process)))


def extract_many(utterances, config: FeatureConfig = FeatureConfig(), *, jobs: int = 1,
                 progress: bool = False, keep_going: bool = False,
                 seconds_per_process: float | None = None):
    """The features of many utterances, computed by worker processes, in input order.

    The features do not depend on the number of processes.  An utterance that cannot be used
    (:class:`AudioError`: unreadable, too short, all silence...) stops the run: the first such
    one in the order of ``utterances`` is raised (whatever order the workers finish in) and the
    remaining work is cancelled.

    Parameters
    ----------
    utterances : sequence of Utterance
    config : FeatureConfig
        As in :func:`extract_features`.
    jobs : int, default 1
        Worker processes (1: in this process).
    progress : bool, default False
        A tqdm progress bar on stderr.  Whatever it is, the ``emkit`` logger says how far the run
        is (INFO, at most every 30 s: utterances done of all, failed, rate, time left) and sums
        it up at the end (utterances, computed, failed, time).
    keep_going : bool, default False
        Leave each unusable utterance out instead, with a warning naming it, and a last one
        counting them (as Kaldi's feature tools do); AudioError when none is left.
    seconds_per_process : float, optional
        Fewer processes when there is little audio (see :func:`processes_for`).

    Yields
    ------
    (Utterance, ndarray of shape (n_frames, dim))
        Each utterance and its float32 features.
    """
    from tqdm.auto import tqdm

    utterances = list(utterances)
    jobs = processes_for(utterances, jobs, seconds_per_process)
    bar = tqdm(total=len(utterances), desc="features", unit="utt", file=sys.stderr,
               disable=not progress, leave=False, delay=1.0)
    failed, outcomes = [], None
    multi_channel, first_multi_channel = 0, None
    done = Progress("features", len(utterances), "utterance")
    try:
        if jobs <= 1:
            outcomes = (_attempt(u, config) for u in utterances)
        else:
            from joblib import Parallel, delayed

            outcomes = Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
                delayed(_attempt)(u, config) for u in utterances)
        for u, (features, caught, error) in zip(utterances, outcomes, strict=True):
            for message, category in caught:
                if not issubclass(category, MultiChannelWarning):
                    warn_at_caller(message, category)
                elif error is None:  # summed up below; of an utterance left out, moot
                    multi_channel += 1
                    first_multi_channel = first_multi_channel or message
            bar.update(1)
            done.advance(failed=error is not None)
            if error is None:
                yield u, features
            elif not keep_going:
                raise error
            else:
                failed.append(error)
                warn_at_caller(f"{error}; left out", UserWarning)
        if multi_channel:  # one line, not one per file of a corpus of stereo recordings
            kept = len(utterances) - len(failed)
            among = f"the {kept} utterances kept" if failed else f"{kept} utterances"
            warn_at_caller(f"{multi_channel} of {among} come from multi-channel audio, whose "
                          f"first channel was used (the first: {first_multi_channel})",
                          MultiChannelWarning)
        if failed and len(failed) == len(utterances):
            raise AudioError(f"none of the {len(utterances)} utterances could be used (the first: "
                             f"{failed[0]})")
        if failed:
            warn_at_caller(f"{len(failed)} of {len(utterances)} utterances could not be used and "
                          "were left out (see the warnings above)", UserWarning)
        logger.info("features: %s in %s: %d computed, %d failed%s, with %d process%s",
                    plural(len(utterances), "utterance"), format_duration(done.elapsed),
                    len(utterances) - len(failed), len(failed),
                    " (left out: see the warnings above)" if failed else "", jobs,
                    "" if jobs == 1 else "es")
    finally:
        if outcomes is not None:  # joblib's generator warns of the results left unused: they are
            with warnings.catch_warnings():  # (a failure, or the caller stopped early)
                warnings.simplefilter("ignore")
                outcomes.close()
        bar.close()
