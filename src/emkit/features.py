"""Reading features, id lists and trial lists; writing and reading score files.

The code lives in :mod:`emkit.io.features` (feature files: npy, npz, HDF5, Kaldi ark/scp) and
:mod:`emkit.io.lists` (id lists, trial lists, score files); this module re-exports their public
names, so ``from emkit.features import read_features`` keeps working.
"""

from __future__ import annotations

# (also importable from here, as before: InvalidFileError, MAX_UTTERANCE_BYTES, LABELS,
# DIRECTORY_SUFFIXES, list_feature_directory, format_score)
from .io.atomic import atomic_write
from .io.errors import InvalidFileError  # noqa: F401
from .io.features import (DIRECTORY_SUFFIXES, list_feature_directory,  # noqa: F401
                          read_feature_sources, read_features)
from .io.kaldi import read_kaldi_ark, read_kaldi_scp
from .io.lists import (LABELS, Trials, check_writable, format_score,  # noqa: F401
                       read_id_lists, read_id_map, read_scores, read_trials, write_scores)
from .io.untrusted import MAX_UTTERANCE_BYTES, FeatureError  # noqa: F401

__all__ = ["FeatureError", "read_features", "read_feature_sources", "read_kaldi_ark",
           "read_kaldi_scp", "read_id_map", "read_id_lists", "Trials", "read_trials",
           "write_scores", "read_scores", "atomic_write", "check_writable"]

