"""Opening a spill file to read it back (:mod:`._spill_files`): only one that this user's emkit
wrote, into its private folder, and nothing else put at its path.

A spill file holds pickles, so reading another file in its place would run whatever that file
says, and a named pipe put there would block the reader for ever.  So a spill file is opened
once, relative to its folder: the folder is opened without following a link and must be this
user's, writable by no one else (as :func:`~._spill_dirs.worker_directory`'s folders are made:
``0o700``); the file must be a regular file of this user's, checked in that folder before it
is opened (opening a device can act) and by ``fstat`` once open (one swapped in between), and is
opened without following a link and without blocking.  HDF5 reads that descriptor
(:class:`~emkit.io.h5_files.CheckedFile`), never the path again.

Workers that share a spill directory must run as one user (one uid on every host).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

from ..io._message_text import file_kind

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | getattr(os, "O_NOCTTY", 0) | _CLOEXEC


class SpillFileError(OSError):
    """A path handed to a spill reader is not a spill file that this user's emkit wrote."""


@contextlib.contextmanager
def open_spill_file(path):
    """``h5py.File`` open read-only on the spill file ``path``, through one checked descriptor.

    A missing file (or folder) is a ``FileNotFoundError`` that says what to configure (a worker
    on another host, no shared spill directory); anything else refused is a
    :class:`SpillFileError` naming the file and what was found.
    """
    import h5py

    from ..io.h5_files import CheckedFile

    path = os.fspath(path)
    with CheckedFile(_checked_descriptor(path), path) as raw, h5py.File(raw, "r") as f:
        yield f  # (closed before the descriptor it reads)


def _checked_descriptor(path: str) -> int:
    folder, name = os.path.split(path)
    try:
        folder_fd = os.open(folder or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                            | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as exc:  # a link (ELOOP), not a folder (ENOTDIR), no permission
        raise SpillFileError(f"emkit's spill file {path!r}: its folder cannot be opened as "
                             f"emkit's ({exc.strerror}; a symbolic link?)") from None
    try:
        _check_folder(os.fstat(folder_fd), path)
        try:  # (checked before it is opened too: opening a device can act, a tape rewinds)
            _check_file(os.stat(name, dir_fd=folder_fd, follow_symlinks=False), path)
            fd = os.open(name, _FILE_FLAGS, dir_fd=folder_fd)
        except FileNotFoundError:
            raise _missing(path) from None
        except SpillFileError:
            raise
        except OSError as exc:  # a symbolic link (O_NOFOLLOW: ELOOP), no permission
            what = ("is a symbolic link, not the regular file emkit wrote"
                    if exc.errno == errno.ELOOP else f"cannot be opened ({exc.strerror})")
            raise SpillFileError(f"emkit's spill file {path!r} {what}") from None
    finally:
        os.close(folder_fd)
    try:
        _check_file(os.fstat(fd), path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_folder(info: os.stat_result, path: str) -> None:
    _check_owner(info, path, "its folder")
    if info.st_mode & 0o022:
        raise SpillFileError(f"emkit's spill file {path!r}: its folder can be written by other "
                             f"users (mode {stat.S_IMODE(info.st_mode):o}; emkit makes it 700)")


def _check_file(info: os.stat_result, path: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise SpillFileError(f"emkit's spill file {path!r} is {file_kind(info.st_mode)}, not the "
                             "regular file emkit wrote")
    _check_owner(info, path, "it")


def _check_owner(info: os.stat_result, path: str, what: str) -> None:
    if info.st_uid != os.getuid():
        raise SpillFileError(f"emkit's spill file {path!r}: {what} belongs to user {info.st_uid}, "
                             f"not to this one ({os.getuid()}); emkit reads back only the spill "
                             "files it wrote itself")


def _missing(path: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"emkit's spill file {path} (written by another dask worker) cannot be read on "
        f"{socket.gethostname()}: with workers on several hosts, set "
        "emkit.set_config(spill_directory=...) to a directory that every worker shares, or "
        "dask_cache='memory'")
