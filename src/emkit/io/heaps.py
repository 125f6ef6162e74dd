"""A check of HDF5 global heaps, made on the raw bytes before the HDF5 library parses them."""

from __future__ import annotations

import os

from .errors import InvalidFileError

#: nothing here is public API: the helpers of emkit.io's HDF5 readers (internal; their
#: un-underscored names stay importable)
__all__ = []

_GCOL = b"GCOL\x01\x00\x00\x00"  # a global heap collection: signature, version 1, reserved

#: Bytes of the file read at a time while looking for collections (the scan's memory bound).
_WINDOW = 8 << 20


def check_global_heaps(f, path: str) -> None:
    """Walk every global heap collection (where variable-length strings live) as HDF5 will.

    HDF5 2.0's parser loops forever on a collection whose free-space entry has size 0 (and wanders
    through garbage on other inconsistent sizes); a collection whose entries do not tile it
    exactly is refused before HDF5 sees it.  One pass over the file's bytes, read
    :data:`_WINDOW` bytes at a time (a memory map of the whole file counted in the resident set:
    a dask worker reading a 4 GB file went over its memory limit and was restarted).

    ``f``: the file, open to read bytes (the descriptor HDF5 will read); ``path`` names it in
    messages.
    """
    size = os.fstat(f.fileno()).st_size
    if size < len(_GCOL):
        return
    for start in _signatures(f, size):
        _check_collection(f, path, start, size)


def _signatures(f, size: int):
    """Offsets of every collection signature in the open file ``f`` of ``size`` bytes."""
    overlap = len(_GCOL) - 1  # a signature across two windows is found in the first
    for offset in range(0, size, _WINDOW):
        f.seek(offset)
        window = f.read(min(_WINDOW + overlap, size - offset))
        at = window.find(_GCOL)
        while 0 <= at < _WINDOW:
            yield offset + at
            at = window.find(_GCOL, at + 1)


def _check_collection(f, path: str, start: int, size: int) -> None:
    f.seek(start + 8)
    end = start + int.from_bytes(f.read(8), "little")
    if end > size:  # beyond the end of the file: HDF5 reports it as truncated
        return
    p = start + 16
    while p + 16 <= end:
        f.seek(p)
        header = f.read(16)
        index = int.from_bytes(header[:2], "little")
        entry = int.from_bytes(header[8:16], "little")
        step = 16 + -(-entry // 8) * 8 if index else entry
        if step < 16 or p + step > end:
            break
        p += step
    if not (p == end or (end - p < 16 and p < end)):
        raise InvalidFileError(f"{path}: a global heap (variable-length data) at byte "
                               f"{start} is inconsistent (damaged file)")
