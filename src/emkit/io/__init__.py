"""HDF5 persistence.  Only this package imports h5py.

* :mod:`emkit.io.gmm` reads and writes ``GMMMachine`` and ``GMMStats`` in bob.learn.em's layouts
  (its current "1.0" layout, and reads the legacy bob 2.x layout).
* :mod:`emkit.io.h5` holds the shared plumbing: atomic writes, opening paths or groups, and the
  versioned layout stamp used by the estimators the reference could not save.
"""

from .errors import InvalidFileError
from .h5 import atomic_h5_write, open_for_reading, open_for_writing, read_stamp, write_stamp

__all__ = ["InvalidFileError", "atomic_h5_write", "open_for_reading", "open_for_writing", "read_stamp", "write_stamp"]
