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

    Returns ``{utterance id: (n_frames, n_features)}`` of what was written, in input order.

    ``inputs``: audio files, directories, Kaldi data directories (see :func:`find_utterances`).
    ``output``: a path ending in ``.ark`` gives a Kaldi ark and its ``.scp`` (same stem); a
    name without a feature-file suffix is a directory of ``<utterance-id>.npy`` files (created
    when missing); another feature-file suffix (``.h5``, ``.npz``, ``.npy``, ``.scp``...) is a
    ``ValueError``.  All or nothing: on any failure no output file is written (or replaced).
    ``keep_going``: an utterance that cannot be used is left out with a warning instead (see
    :func:`extract_many`); the others are written.  ``jobs`` worker processes compute them, or
    fewer with ``seconds_per_process`` (one per that many seconds of audio at most, see
    :func:`processes_for`; ``emkit features`` gives :data:`SECONDS_PER_PROCESS`).
    ``utt2num_frames``: a path where to write Kaldi's ``utt2num_frames`` of the features written
    too (``<utterance id> <frames>`` lines in input order; see :func:`utt2num_frames_path`),
    written with them (the last one computed, it is renamed just before them), all or nothing;
    None: not written.
    """
    kind = output_kind(output)
    utterances = find_utterances(inputs)
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
