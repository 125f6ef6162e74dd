"""How :mod:`emkit.io.h5` opens files and the objects in them.

What :func:`~emkit.io.h5.open_for_reading` and :func:`~emkit.io.h5.open_for_writing` accept;
a path opened for reading once, checked to be a regular file, and read by HDF5 through that
descriptor (:mod:`emkit.io.h5_files`), HDF5's failures to open it an
:class:`~emkit.io.errors.InvalidFileError` naming the file; and a dataset or group of a file
opened through a hard link only (never a link to elsewhere or another file)."""

from __future__ import annotations

import contextlib
import functools
import os

import h5py

from .errors import InvalidFileError
from .h5_files import hdf5_reading
from ._message_text import show_path
from .untrusted import open_checked


def is_path(obj) -> bool:
    """Whether ``obj`` names a file (rather than being an open h5py group)."""
    return isinstance(obj, (str, bytes, os.PathLike))


def check_handle(group) -> None:
    """Refuse a closed h5py file or group (h5py's own error named neither)."""
    if not group.id.valid:
        raise ValueError("hdf5 is a closed h5py File/Group: give a path or an open file")


def check_target(hdf5) -> None:
    """Refuse what is neither a path nor an open h5py group."""
    if is_path(hdf5):
        return
    if not isinstance(hdf5, h5py.Group):
        raise TypeError(f"hdf5 must be a path or an open h5py File/Group; got {type(hdf5).__name__}")
    check_handle(hdf5)


@contextlib.contextmanager
def open_file(path: str):
    """The HDF5 file at ``path``, read-only through the descriptor emkit checked."""
    try:
        fd = open_checked(path)  # a directory, a named pipe (would block), a device (endless)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such HDF5 file: {show_path(path)}") from None
    except InvalidFileError as exc:  # (a FeatureError saying why: a pipe, a link loop...)
        raise InvalidFileError(str(exc)) from None
    with hdf5_reading(fd, path, functools.partial(_unreadable, path)) as (handle, _):
        yield handle


def _unreadable(path: str, exc: Exception) -> InvalidFileError:
    text = str(exc)
    if "signature not found" in text:
        reason = "is not an HDF5 file (no HDF5 signature)"
    elif "truncated" in text:
        reason = "is not a complete HDF5 file (truncated: shorter than its header declares)"
    else:
        reason = "is not a valid HDF5 file (damaged or unsupported header)"
    return InvalidFileError(f"{path} {reason}")


def hard_linked_child(group, name: str, kind: str, required: bool, fail):
    """The dataset (``kind="dataset"``) or group ``name`` directly under ``group`` with, for a
    dataset, its creation property list (None for a group); ``(None, None)`` when missing and
    not ``required``.  ``fail(problem)`` raises for a missing object (when ``required``), a soft
    or external link, an object of the other kind, a virtual dataset or one stored in external
    files."""
    key = name.encode()
    if not group.id.links.exists(key):
        if required:
            fail("is missing")
        return None, None
    link_type = group.id.links.get_info(key).type
    if link_type == h5py.h5l.TYPE_EXTERNAL:
        fail("is an external link to another file (refused)")
    if link_type != h5py.h5l.TYPE_HARD:
        fail("is a soft link (emkit files hold none; refused)")  # or user-defined
    oid = h5py.h5o.open(group.id, key)
    if kind == "group":
        if not isinstance(oid, h5py.h5g.GroupID):
            fail("is not a group")
        return h5py.Group(oid), None
    if not isinstance(oid, h5py.h5d.DatasetID):
        fail("is not a dataset")
    dcpl = oid.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        fail("is a virtual dataset (it maps other files; refused)")
    if dcpl.get_external_count():
        fail("stores its data in external files (refused)")
    return h5py.Dataset(oid), dcpl
