"""Features from audio: Kaldi-compatible MFCC/filterbanks, deltas, energy VAD, CMVN.

Needs the ``audio`` extra (``pip install 'emkit[audio]'``: ``kaldi-native-fbank`` and
``soundfile``) for reading audio and computing MFCC/fbank; deltas, VAD and CMVN are numpy only
and importing this package never needs the extra.

>>> from emkit.audio import FeatureConfig, compute_features
>>> ids = compute_features(["data/train"], "feats.ark")          # doctest: +SKIP

Main entry points: :func:`compute_features` (inputs -> ``.npy`` directory or Kaldi ark/scp),
:func:`extract_features` (one utterance -> array), :func:`find_utterances`,
:func:`read_audio`; the steps :func:`compute_kaldi_features`, :func:`add_deltas`,
:func:`compute_vad`, :func:`cmvn`, :func:`sliding_cmvn`.
"""

from __future__ import annotations

import os

from ..io.atomic import atomic_path
from ._cmvn import cmvn, sliding_cmvn
from ._deltas import add_deltas
from ._kaldi_features import KaldiOptions, compute_kaldi_features, log_energy
from ._pipeline import (SECONDS_PER_PROCESS, FeatureConfig, extract_features, extract_many,
                        processes_for)
from ._read import AudioError, MultiChannelWarning, read_audio
from ._sources import Utterance, find_utterances, read_data_dir
from ._vad import compute_vad
from ._write import (output_kind, utt2num_frames_path, write_kaldi_ark, write_npy_dir,
                     write_utt2num_frames)

__all__ = ["AudioError", "FeatureConfig", "KaldiOptions", "MultiChannelWarning", "Utterance", "add_deltas", "cmvn",
           "compute_features", "compute_kaldi_features", "compute_vad", "extract_features",
           "extract_many", "find_utterances", "log_energy", "read_audio", "read_data_dir",
           "sliding_cmvn", "utt2num_frames_path", "write_kaldi_ark", "write_npy_dir",
           "processes_for", "SECONDS_PER_PROCESS"]


def compute_features(inputs, output, config: FeatureConfig = FeatureConfig(), *, jobs: int = 1,
                     progress: bool = False, keep_going: bool = False,
                     seconds_per_process: float | None = None, utt2num_frames=None) -> dict:
    """Features of every utterance of ``inputs``, written to ``output``.

    All or nothing: on any failure no output file is written (or replaced).

    Parameters
    ----------
    inputs : str or path-like, or a list of them
        Audio files, directories, Kaldi data directories (see :func:`find_utterances`).
    output : str or path-like
        A path ending in ``.ark`` gives a Kaldi ark and its ``.scp`` (same stem); a name without
        a feature-file suffix is a directory of ``<utterance-id>.npy`` files (created when
        missing); another feature-file suffix (``.h5``, ``.npz``, ``.npy``, ``.scp``...) is a
        ``ValueError``.
    config : FeatureConfig
        The feature options (Kaldi's defaults, without dither).
    jobs : int, default 1
        Worker processes.
    progress : bool, default False
        A progress bar on stderr.
    keep_going : bool, default False
        Leave out an utterance that cannot be used, with a warning (see :func:`extract_many`),
        one whose audio file a data directory lists but does not exist too; the others are
        written.
    seconds_per_process : float, optional
        At most one process per that many seconds of audio (see :func:`processes_for`;
        ``emkit features`` gives :data:`SECONDS_PER_PROCESS`).
    utt2num_frames : str or path-like, optional
        Where to write Kaldi's ``utt2num_frames`` of the features written too (``<utterance
        id> <frames>`` lines in input order; see :func:`utt2num_frames_path`), all or nothing
        with them; None: not written.

    Returns
    -------
    dict
        ``{utterance id: (n_frames, n_features)}`` of what was written, in input order.
    """
    kind = output_kind(output)
    # (with keep_going, a data directory's missing audio file is an utterance left out)
    utterances = find_utterances(inputs, missing_ok=keep_going)
    shapes = {}

    def items():
        for u, feats in extract_many(utterances, config, jobs=jobs, progress=progress,
                                     keep_going=keep_going,
                                     seconds_per_process=seconds_per_process):
            shapes[u.id] = feats.shape
            yield u.id, feats
        if utt2num_frames is not None:  # (a .npy directory exists by now) a failure: no features
            with atomic_path(utt2num_frames) as tmp, \
                    open(tmp, "w", encoding="utf-8", newline="\n") as f:
                write_utt2num_frames(f, shapes)

    if kind == "ark":
        write_kaldi_ark(items(), output)
    else:
        write_npy_dir(items(), output)
    return shapes
