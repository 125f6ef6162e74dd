"""Datasets of many rows (one per utterance) read a block of rows at a time, each block checked
as :func:`emkit.io.h5.read_array` checks a whole dataset, so that reading a file whose values
are kept holds them plus one block, not them twice.

Every dataset is checked (link, storage, type, shape) when its :class:`RowReader` is made,
before any value is read: make the readers of a file's datasets first, then read.  Only the
layouts emkit writes them in are read (contiguous, or compact for a few values): the rows of a
chunked (perhaps compressed) dataset would decompress whole chunks for each block, which a
file can make as large as the dataset.
"""

from __future__ import annotations

import h5py
import numpy as np

from .h5 import (_check_dtype, _check_shape, _check_storage, _child, _fail, _guarded,
                 _read_checked)

#: nothing here is public API: the helpers of emkit.experiment's statistics files (internal; their
#: un-underscored names stay importable)
__all__ = []


class RowReader:
    """Dataset ``name`` of ``group``, of ``shape`` (its first dimension the rows, None entries
    free) and ``kind`` (``"float"``: float64 values, finite; ``"int"``: int64), values
    ``>= 0`` when ``nonnegative``; an :class:`~emkit.io.InvalidFileError` naming the file and
    the dataset when it is missing, a link, of another type, shape or layout, or declares more
    bytes than the file holds."""

    def __init__(self, group, name: str, kind: str = "float", *, shape: tuple,
                 nonnegative: bool = False):
        self.group, self.name, self.kind, self.nonnegative = group, name, kind, nonnegative
        self._dataset, self._dcpl = _checked_dataset(group, name, kind, shape)
        self.n_rows = int(self._dataset.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, C-contiguous, their values checked."""
        return _read_rows(self.group, self.name, self._dataset, self._dcpl, self.kind,
                          self.nonnegative, slice(start, stop))


@_guarded("dataset")
def _checked_dataset(group, name, kind, shape):
    dataset, dcpl = _child(group, name, "dataset", True)
    _check_dtype(dataset, group, name, kind)
    _check_shape(dataset, group, name, shape, None)
    if dcpl.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
        _fail(group, name, "is stored in chunks (emkit writes it contiguous; refused)")
    _check_storage(dataset, dcpl, group, name)
    return dataset, dcpl


@_guarded("dataset")
def _read_rows(group, name, dataset, dcpl, kind, nonnegative, rows):
    return _read_checked(dataset, dcpl, group, name, kind, nonnegative=nonnegative, rows=rows)
