"""HDF5 plumbing shared by every saveable object.

Files are written atomically: into a temporary file in the target directory, renamed over the
target only when the writer finished without error.  A crash never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os

import h5py
import numpy as np

from .atomic import atomic_path

#: Root attribute naming the emkit class stored in a file of emkit's versioned layout.
CLASS_ATTR = "emkit_class"
#: Root attribute holding the integer version of that class's layout.
VERSION_ATTR = "emkit_format_version"


def _is_path(obj) -> bool:
    return isinstance(obj, (str, bytes, os.PathLike))


@contextlib.contextmanager
def atomic_h5_write(path):
    """Yield an ``h5py.File`` open for writing at a temporary name; rename it to ``path`` on success."""
    with atomic_path(path, suffix=".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as handle:
            yield handle


@contextlib.contextmanager
def open_for_writing(hdf5):
    """A path is written atomically; an open ``h5py`` file or group is written into as it is."""
    if _is_path(hdf5):
        with atomic_h5_write(hdf5) as handle:
            yield handle
    elif isinstance(hdf5, h5py.Group):
        yield hdf5
    else:
        raise TypeError(f"hdf5 must be a path or an open h5py File/Group; got {type(hdf5).__name__}")


@contextlib.contextmanager
def open_for_reading(hdf5):
    """A path is opened read-only and closed afterwards; a ``h5py`` group is used as it is."""
    if _is_path(hdf5):
        path = os.fspath(hdf5)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such HDF5 file: {path!r}")
        with h5py.File(path, "r") as handle:
            yield handle
    elif isinstance(hdf5, h5py.Group):
        yield hdf5
    else:
        raise TypeError(f"hdf5 must be a path or an open h5py File/Group; got {type(hdf5).__name__}")


def write_stamp(group, class_name: str, version: int) -> None:
    """Mark ``group`` as holding ``class_name`` in emkit's layout number ``version``."""
    group.attrs[CLASS_ATTR] = class_name
    group.attrs[VERSION_ATTR] = np.int64(version)


def read_stamp(group, class_name: str, max_version: int) -> int:
    """Check that ``group`` holds ``class_name`` in a layout this emkit reads; return the version."""
    found = group.attrs.get(CLASS_ATTR)
    if isinstance(found, bytes):
        found = found.decode()
    if found is None:
        raise ValueError(
            f"{getattr(group, 'file', group).filename if hasattr(group, 'file') else group!r} is not an emkit "
            f"{class_name} file (attribute {CLASS_ATTR!r} missing)"
        )
    if found != class_name:
        raise ValueError(f"the file holds an emkit {found}, not a {class_name}")
    version = int(group.attrs[VERSION_ATTR])
    if version > max_version:
        raise ValueError(
            f"{class_name} file layout version {version} is newer than this emkit reads (<= {max_version}); "
            "upgrade emkit"
        )
    return version


def read_optional(group, name, default=None):
    """Value of dataset ``name`` (scalars as numpy scalars), or ``default`` when absent."""
    if name not in group:
        return default
    return group[name][()]


def as_str(value) -> str:
    """h5py returns variable-length strings as bytes; turn them back into ``str``."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return as_str(value[()])
    return str(value)
