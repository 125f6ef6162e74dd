"""HDF5 feature files read without trusting their declared shapes.

Before a dataset is read, its dtype must be numeric (integers or floats; no compound, string,
reference, variable-length or opaque data), it must not be virtual nor keep its data in external
raw files (either would make emkit read other files), and its declared size must be backed by
what the file stores: an unfiltered dataset must store all its bytes (a dataset declared far
larger than what was written, read as fill values, is refused), a compressed one may expand at
most :data:`~emkit.io.untrusted.MAX_COMPRESSION_RATIO` times, and no dataset may claim more
stored bytes than the file has.  See :mod:`emkit.io.untrusted`.
"""

from __future__ import annotations

import contextlib
import os

import h5py
import numpy as np

from .h5_chunks import compressed_chunks_problem
from .h5_files import hdf5_reading
from .untrusted import (MAX_COMPRESSION_RATIO, MAX_UTTERANCE_BYTES, FeatureError, check_limit,
                        check_utterance_size, open_checked, show_key)

__all__ = ["check_feature_dataset", "open_hdf5", "read_hdf5_features"]

#: Errors h5py raises for damaged files (wrapped into FeatureError with the file's name).
H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError,
             IndexError, SystemError)


@contextlib.contextmanager
def open_hdf5(path, *, heaps: bool = True, check=None):
    """Open a regular file as read-only HDF5 (a context manager).

    HDF5 reads the descriptor the checks were made on (:mod:`emkit.io.h5_files`), so the file
    cannot be swapped for a link in between.

    Parameters
    ----------
    path : str or path-like
        A regular file (not a link, device or FIFO).
    heaps : bool, keyword-only, default True
        Check the file's global heaps first (HDF5 would loop forever on some damaged ones).
    check : callable or None, keyword-only
        Called with the file's ``os.stat_result`` before HDF5 reads a byte; it refuses the file
        by raising.

    Yields
    ------
    file : h5py.File
        Read-only, closed on leaving the ``with`` block.
    info : os.stat_result
        The status of the file it reads.

    Raises
    ------
    FileNotFoundError
        No such file.
    FeatureError
        A file that cannot be opened, is not regular, or is not readable HDF5 (damaged).
    """
    text = os.fspath(path)
    try:
        fd = open_checked(path)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FeatureError(f"{text}: cannot open it ({exc.strerror})") from None

    def unreadable(exc):
        return FeatureError(f"{text}: not a readable HDF5 file ({os.fstat(fd).st_size} bytes; "
                            f"h5py: {exc})")

    with hdf5_reading(fd, path, unreadable, heaps=heaps, error=FeatureError,
                      check=check) as opened:
        yield opened


def check_feature_dataset(ds, where: str, file_bytes: int, max_utterance_bytes: int | None,
                          ndim: int | None = 2) -> None:
    """Refuse a dataset whose dtype, shape or storage does not fit a feature matrix.

    Parameters
    ----------
    ds : h5py.Dataset
        The dataset, not read (only its metadata and storage sizes are).
    where : str
        The file and dataset to name in error messages.
    file_bytes : int
        The file's size: a dataset claiming more stored bytes is refused.
    max_utterance_bytes : int or None
        Largest float64 size of the matrix, in bytes; None: no limit (for datasets read chunk by
        chunk).
    ndim : int or None, default 2
        The number of dimensions required; None: any.

    Raises
    ------
    FeatureError
        A dtype that is not integer or float; the wrong number of dimensions; a virtual dataset
        or one with external storage; fewer stored bytes than declared (unfiltered), or over 100
        times fewer (compressed); more stored bytes than the file; a size over
        ``max_utterance_bytes``.
    """
    shape, dtype = ds.shape, ds.dtype
    if shape is None or (ndim is not None and len(shape) != ndim):
        raise FeatureError(f"{where} must be a 2-D dataset (n_frames, n_features); got shape "
                           f"{shape}")
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
        raise FeatureError(f"{where}: dtype {dtype} is not numeric (integers or floats)")
    if ds.is_virtual:
        raise FeatureError(f"{where} is a virtual dataset (it reads other files); refused")
    if ds.external:
        raise FeatureError(f"{where} keeps its data in external files; refused")
    declared = dtype.itemsize
    for n in shape:
        declared *= int(n)
    stored = ds.id.get_storage_size()
    if stored > file_bytes:
        raise FeatureError(f"{where} claims {stored} stored bytes, but the file has {file_bytes}")
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    if not filtered and stored < declared:
        raise FeatureError(f"{where} declares shape {shape} of {dtype} ({declared} bytes) but "
                           f"stores only {stored} bytes (unwritten data)")
    if filtered and declared > MAX_COMPRESSION_RATIO * stored + 1024:
        raise FeatureError(f"{where} declares {declared} bytes from {stored} compressed bytes, "
                           f"more than {MAX_COMPRESSION_RATIO} times as many; refused")
    problem = compressed_chunks_problem(ds, declared) if filtered else None
    if problem:
        raise FeatureError(f"{where} {problem}")
    if max_utterance_bytes is not None:
        check_utterance_size(shape, where, max_utterance_bytes)


def read_hdf5_features(path, *, max_utterance_bytes: int = MAX_UTTERANCE_BYTES) -> dict:
    """The 2-D numeric datasets of an HDF5 file, one utterance each.

    A file whose only dataset is ``array`` (bob's convention) is one utterance named after the
    file; a file holding an emkit or bob model is refused.

    Parameters
    ----------
    path : str or path-like
        A regular HDF5 file.
    max_utterance_bytes : int, keyword-only
        Largest float64 size of one dataset, in bytes (default 2 GiB); a larger one raises
        before anything is allocated.

    Returns
    -------
    dict of str to ndarray
        ``{name: matrix}`` (the dataset's path without its leading ``/``), each a float64 array
        of shape (n_frames, n_features).

    Raises
    ------
    FeatureError
        A damaged or non-HDF5 file, a model file, a dataset :func:`check_feature_dataset`
        refuses, datasets that together store more bytes than the file holds.
    """
    limit = check_limit(max_utterance_bytes)
    text = os.fspath(path)
    stem = os.path.splitext(os.path.basename(text))[0]
    with open_hdf5(path) as (f, info):
        try:
            file_bytes = info.st_size
            for marker in ("emkit_class", "writer_class"):  # a model, not features
                if marker in f.attrs:
                    raise FeatureError(f"{text}: holds a model ({_class_name(f.attrs, marker)}), "
                                       "not features")
            found = {}

            def visit(name, obj):  # returns None: a value would stop the visit
                if isinstance(obj, h5py.Dataset):
                    found[name] = obj

            f.visititems(visit)
            if list(found) == ["array"]:
                wanted = {stem: found["array"]}
            else:
                wanted = {name: ds for name, ds in found.items()
                          if ds.shape is not None and len(ds.shape) == 2
                          and ds.dtype.kind in "fiu"}
            out, stored = {}, 0
            for name, ds in wanted.items():
                where = f"{text}: utterance {show_key(name)}"
                if ds.name != "/" + name:  # bob's single "array"
                    where += f" (dataset {show_key(ds.name)})"
                check_feature_dataset(ds, where, file_bytes, limit)
                # datasets sharing their bytes (forged addresses) would read the file many times
                stored += ds.id.get_storage_size()
                if stored > file_bytes:
                    raise FeatureError(f"{where}: the datasets read so far store {stored} bytes, more "
                                       f"than the file's {file_bytes} (datasets sharing bytes; refused)")
                out[name] = np.empty(ds.shape, dtype=np.float64)  # HDF5 converts while reading
                if out[name].size:
                    ds.read_direct(out[name])
            return out
        except FeatureError:
            raise
        except H5_ERRORS as exc:
            raise FeatureError(f"{text}: a damaged HDF5 file (h5py: {exc})") from None


def _class_name(attrs, marker: str) -> str:
    try:
        value = attrs[marker]
    except H5_ERRORS:
        return "unreadable class name"
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return value if len(value) <= 80 and value.isprintable() else "unknown class"
