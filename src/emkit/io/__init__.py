"""File formats: HDF5 persistence of models, and the feature readers.  Only this package imports
h5py.

* :mod:`emkit.io.gmm` reads and writes ``GMMMachine`` and ``GMMStats`` in bob.learn.em's layouts
  (its current "1.0" layout, and reads the legacy bob 2.x layout).
* :mod:`emkit.io.h5` holds the shared plumbing: atomic writes, opening paths or groups, the
  versioned layout stamp used by the estimators the reference could not save, and the validated
  reads every reader goes through (files are untrusted input).
* :mod:`emkit.io.factor_analysis`, :mod:`emkit.io.ivector`, :mod:`emkit.io.plda`,
  :mod:`emkit.io.systems`: the other estimators' layouts.
* Feature files (untrusted input: regular files only, declared sizes checked against the bytes
  present before anything is allocated, a per-utterance size limit): :mod:`emkit.io.kaldi` (ark/scp),
  :mod:`emkit.io.numpy_files` (.npy/.npz), :mod:`emkit.io.hdf5_features`, their shared rules in
  :mod:`emkit.io.untrusted`; lazy dask inputs in :mod:`emkit.io.arrays`.
* :class:`InvalidFileError` (:mod:`emkit.io.errors`, a ``ValueError``): a file refused as damaged,
  inconsistent or hostile; the message names the file and the dataset, never its contents.
"""

from .errors import InvalidFileError
from .h5 import atomic_h5_write, open_for_reading, open_for_writing, read_stamp, write_stamp

__all__ = ["InvalidFileError", "atomic_h5_write", "open_for_reading", "open_for_writing", "read_stamp",
           "write_stamp"]
