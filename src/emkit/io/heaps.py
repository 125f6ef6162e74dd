"""A check of HDF5 global heaps, made on the raw bytes before the HDF5 library parses them."""

from __future__ import annotations

import mmap
import os

from .errors import InvalidFileError

_GCOL = b"GCOL\x01\x00\x00\x00"  # a global heap collection: signature, version 1, reserved


def check_global_heaps(path: str) -> None:
    """Walk every global heap collection (where variable-length strings live) as HDF5 will.

    HDF5 2.0's parser loops forever on a collection whose free-space entry has size 0 (and wanders
    through garbage on other inconsistent sizes); a collection whose entries do not tile it
    exactly is refused before HDF5 sees it.  One pass over the file's bytes (memory-mapped).
    """
    if os.path.getsize(path) < len(_GCOL):
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        start = buf.find(_GCOL)
        while start >= 0:
            end = start + int.from_bytes(buf[start + 8:start + 16], "little")
            if end > len(buf):  # beyond the end of the file: HDF5 reports it as truncated
                start = buf.find(_GCOL, start + 1)
                continue
            p = start + 16
            while p + 16 <= end:
                index = int.from_bytes(buf[p:p + 2], "little")
                size = int.from_bytes(buf[p + 8:p + 16], "little")
                step = 16 + -(-size // 8) * 8 if index else size
                if step < 16 or p + step > end:
                    break
                p += step
            if not (p == end or (end - p < 16 and p < end)):
                raise InvalidFileError(f"{path}: a global heap (variable-length data) at byte "
                                       f"{start} is inconsistent (damaged file)")
            start = buf.find(_GCOL, start + 1)
