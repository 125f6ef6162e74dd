"""HDF5 files read through the descriptor emkit has checked, never reopened by name.

``h5py.File(path)`` lets HDF5 ``open`` the path again after emkit has checked it
(:func:`~emkit.io.untrusted.check_regular`): a named pipe put in the file's place in between
would block that ``open`` forever, and another file would be read unchecked.  So a file is opened
once, by :func:`~emkit.io.untrusted.open_checked` (non-blocking, ``fstat``-ed), and HDF5 reads
that descriptor through h5py's file-object driver; the global-heap check (:mod:`emkit.io.heaps`)
reads it too.  The driver calls back into Python for each read: a 500 MB dataset read as a whole
took 0.27 s against 0.34 s by name, 0.79 s against 0.59 s in 4096-row chunks, and opening a file
and reading 50 small groups 132 ms against 99-116 ms (h5py alone, page cache warm, a loaded
machine: noisy); read_hdf5_features of two 500 MB datasets used 1.6-2.1 s of CPU either way.

An HDF5 file still open on such a file object at interpreter exit can crash Python (h5py 3.16 with
an unclosed ``io.FileIO`` subclass: a segmentation fault): each handle here is closed by its
``with`` block, before the descriptor it reads.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os

import h5py

from .errors import InvalidFileError
from .heaps import check_global_heaps

#: nothing here is public API: the helpers of emkit.io's HDF5 readers (internal; their
#: un-underscored names stay importable)
__all__ = []


class _FileName(str):
    """A path that h5py hands to HDF5 as its own bytes.

    h5py names the HDF5 file of a file object ``repr(obj).encode('ASCII', 'replace')``; this
    ``encode`` keeps ``File.filename`` the path, as when HDF5 opens it by name, non-ASCII
    characters included (messages name the file by it).
    """

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return os.fsencode(str(self))


class CheckedFile(io.FileIO):
    """A descriptor of :func:`~emkit.io.untrusted.open_checked` as the file object HDF5 reads
    (closed with it); ``path`` names the file."""

    def __init__(self, fd: int, path):
        super().__init__(fd, "rb")
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return _FileName(self.path)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # h5py raises what its file object raises: a damaged file's address beyond off_t is an
        # OSError, as HDF5's own driver reports it, not an OverflowError
        try:
            return super().seek(offset, whence)
        except OverflowError:
            raise OSError(errno.EINVAL, f"address {offset} beyond the largest file offset") \
                from None


@contextlib.contextmanager
def hdf5_reading(fd: int, path, unreadable, *, heaps: bool = True, error=InvalidFileError,
                 check=None):
    """``(h5py.File open read-only on fd, os.stat_result of fd)``; ``fd`` is closed afterwards.

    ``fd``: from :func:`~emkit.io.untrusted.open_checked`, handed over at once (it is closed
    whatever happens).  ``unreadable(exc)``: the exception raised when h5py cannot open the file
    (not HDF5, damaged).  ``heaps``: check the global heaps first (an ``error`` naming the file
    when one is inconsistent).  ``check(stat_result)``: called before either, to refuse a file.
    """
    with CheckedFile(fd, path) as raw:
        info = os.fstat(fd)
        if check is not None:
            check(info)
        if heaps:
            try:
                check_global_heaps(raw, raw.path)
            except InvalidFileError as exc:
                raise error(str(exc)) from None
        try:
            handle = h5py.File(raw, "r")
        except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError,
                IndexError, SystemError) as exc:  # what h5py raises for damaged files
            raise unreadable(exc) from None
        with handle:  # closed before the descriptor it reads
            yield handle, info
