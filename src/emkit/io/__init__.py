"""File formats: HDF5 persistence of models, and the feature readers.  Every model file is read
and written here (training checkpoints, :mod:`emkit._checkpoint`, and the dask spill files of
:mod:`emkit._backend._cache` handle their own HDF5 files).

* :func:`save` / :func:`load` (:mod:`emkit.io._registry`): any emkit model to and from HDF5,
  dispatched on the class stamp in the file; each class registers its layout next to itself.

* :mod:`emkit.io.gmm` and :mod:`emkit.io.gmm_stats` read and write ``GMMMachine`` and ``GMMStats``
  in bob.learn.em's layouts (its current "1.0" layout, and read the legacy bob 2.x layout).
* :mod:`emkit.io.h5` holds the shared plumbing: atomic writes, opening paths or groups, the
  versioned layout stamp used by the estimators the reference could not save, and the validated
  reads every reader goes through (files are untrusted input).
* :mod:`emkit.io.factor_analysis`, :mod:`emkit.io.ivector`, :mod:`emkit.io.plda`,
  :mod:`emkit.io.systems`: the other estimators' layouts.
* Feature files (untrusted input: regular files only, declared sizes checked against the bytes
  present before anything is allocated, a per-utterance size limit): :mod:`emkit.io.kaldi` (ark/scp),
  :mod:`emkit.io.numpy_files` (.npy/.npz), :mod:`emkit.io.hdf5_features`, their shared rules in
  :mod:`emkit.io.untrusted`; lazy dask inputs in :mod:`emkit.io.arrays`.  Vectors (i-vectors)
  to and from Kaldi archives, as Kaldi's ``ivector-*`` programs write and read them:
  :mod:`emkit.io.kaldi_vectors`.
* :class:`InvalidFileError` (:mod:`emkit.io.errors`, a ``ValueError``): a file refused as damaged,
  inconsistent or hostile; the message names the file and the dataset, never its contents.
"""

import importlib

#: public name -> submodule (imported on first use: registering a class loads no h5py)
_LAZY = {
    "save": "._registry", "load": "._registry", "register": "._registry",
    "InvalidFileError": ".errors",
    "atomic_h5_write": ".h5", "open_for_reading": ".h5", "open_for_writing": ".h5",
    "read_stamp": ".h5", "write_stamp": ".h5",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'emkit.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
