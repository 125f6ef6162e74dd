"""The read-back of ``save`` (:func:`emkit.io._registry.save`), without a second copy of the model.

``save`` loads what it wrote with emkit's own reader before the file is complete, so that a model
the reader would refuse is never saved.  Reading every array back whole would hold a second copy
of the model while it runs (for an i-vector machine with a 200 MB T, 200 MB more).  Instead:

* inside :func:`reading_back`, :func:`write_array` remembers each array it writes, by its file
  and dataset path;
* the reader's :func:`emkit.io.h5.read_array` checks the dataset as always (link, storage, type,
  shape), then, for a dataset remembered so, reads it in blocks of at most :data:`BLOCK_BYTES`:
  each block must hold the very bytes of the array written there (:func:`read_compared`) and
  passes the reader's value checks; the reader gets a read-only view of the array written.

The reader's structural and value checks and the object's construction all run as for a load of
the file, on the same values, and the file is known to hold exactly the model's arrays.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

#: (what emkit.io.save raises when a file does not read back; the rest is save's)
__all__ = ["ReadBackMismatch"]

#: Largest block (bytes) of a dataset read at once when it is compared with the array written.
BLOCK_BYTES = 1 << 20

#: (file number, dataset path) -> the array written there, while a save reads back what it
#: wrote; else None
_WRITTEN = contextvars.ContextVar("emkit_arrays_written", default=None)


class ReadBackMismatch(Exception):
    """A dataset read back does not hold the bytes of the array written into it."""


@contextlib.contextmanager
def reading_back():
    """Within this block, :func:`write_array` remembers the arrays it writes and the readers
    compare those datasets with them instead of reading them whole."""
    token = _WRITTEN.set({})
    try:
        yield
    finally:
        _WRITTEN.reset(token)


def under_way() -> bool:
    """Whether a save is reading back what it wrote (the object read is then thrown away)."""
    return _WRITTEN.get() is not None


def write_array(group, name: str, values, dtype=np.float64) -> None:
    """Write ``values`` (as ``dtype``; None: its own dtype) as dataset ``name`` of ``group``,
    remembered for the read-back when a save is under way."""
    array = np.asarray(values, dtype=dtype)
    group[name] = array
    written = _WRITTEN.get()
    if written is not None and array.dtype.kind in "biuf":
        written[_key(group[name])] = array


def written_array(ds):
    """The array written into dataset ``ds`` during the save under way, or None (no save under way,
    a dataset not written by :func:`write_array`, or of another shape or type)."""
    written = _WRITTEN.get()
    if written is None:
        return None
    array = written.get(_key(ds))
    if array is None or array.shape != ds.shape or array.dtype != ds.dtype:
        return None
    return array


def read_compared(ds, array, check):
    """``array`` (read-only) once every block of dataset ``ds`` was read, found to hold the bytes
    of the same block of ``array`` and passed to ``check`` (which raises for values the reader
    refuses).  A block of other bytes raises :class:`ReadBackMismatch`."""
    for block in _blocks(ds.shape, ds.dtype.itemsize, BLOCK_BYTES):
        values = np.asarray(ds[block])
        if not _same_bytes(values, array[block]):
            first = tuple(s.start for s in block)
            raise ReadBackMismatch(
                f"not saved, nothing was written: dataset {ds.name!r} does not read back the "
                f"values written into it (they differ in the block from index {first})")
        check(values)
    view = array.view()
    view.flags.writeable = False
    return view


def _key(ds) -> tuple:
    return ds.id.fileno, ds.name


def _same_bytes(a, b) -> bool:
    """Whether ``a`` and ``b`` hold the same values bit for bit (-0.0 is not 0.0)."""
    if a.dtype != b.dtype:
        return False
    bits = f"u{a.dtype.itemsize}" if a.dtype.itemsize in (1, 2, 4, 8) else np.uint8
    return np.array_equal(np.ascontiguousarray(a).reshape(-1).view(bits),
                          np.ascontiguousarray(b).reshape(-1).view(bits))


def _blocks(shape: tuple, itemsize: int, budget: int):
    """Index tuples (of slices) covering an array of ``shape`` once, in C order, each selecting
    at most ``budget`` bytes (or a single element, when one is larger)."""
    if not shape or 0 in shape:
        yield ()
        return
    inner = itemsize * math.prod(shape[1:])
    if inner <= budget or len(shape) == 1:
        step = max(1, budget // inner)
        for start in range(0, shape[0], step):
            yield (slice(start, min(start + step, shape[0])),)
        return
    for i in range(shape[0]):
        for rest in _blocks(shape[1:], itemsize, budget):
            yield (slice(i, i + 1),) + rest
