"""Lazy, out-of-core inputs for dask: feature matrices on disk as dask arrays and bags.

Nothing here loads a whole file: each chunk is read by the task that uses it, on whichever worker
runs it, and only the small reader objects (file names, offsets) travel in the task graph.
``fit`` computes these inputs once (:mod:`emkit._backend._cache`): kept on the workers when they
fit in ``emkit.get_config()["dask_cache_fraction"]`` of the cluster's memory, else (statistics)
spilled to per-worker HDF5 files or (frames) read from disk again at every EM iteration.

Examples
--------
Train a UBM on one big HDF5 matrix, on whatever dask scheduler is active::

    from emkit.io.arrays import hdf5_frames
    X = hdf5_frames("features.h5", "frames", chunk_rows=262_144)   # (N, D) dask array
    ubm = GMMMachine(512, update_variances=True, update_weights=True).fit(X)

Train on a directory of per-utterance ``.npy`` files (frames of all files stacked)::

    X = directory_frames("feats/", pattern="*.npy", files_per_chunk=64)
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np

from .._validation import check_positive_int

__all__ = ["hdf5_frames", "directory_frames", "directory_statistics", "list_feature_files",
           "HDF5RowReader"]


@dataclass(frozen=True)
class HDF5RowReader:
    """A picklable array-like over one 2-D HDF5 dataset: every slice opens, reads and closes the file.

    (``h5py.Dataset`` objects cannot be sent to other processes; this can.)  The file is checked
    once, by :meth:`open`; a slice read later refuses a file whose size or modification time
    changed since (the checks were made on other bytes), instead of checking it again: the
    global-heap check reads the whole file, which every chunk of a 4 GB file then did.

    Attributes
    ----------
    path : str
        The HDF5 file.
    dataset : str
        The dataset's path in the file.
    shape : tuple of int
        The dataset's shape, (n_rows, n_features).
    dtype : numpy.dtype
        The dataset's (integer or float) dtype.
    size : int
        The file's size in bytes when :meth:`open` checked it.
    mtime_ns : int
        The file's modification time (ns) when :meth:`open` checked it.
    """

    path: str
    dataset: str
    shape: tuple
    dtype: np.dtype
    size: int  # the file's size and modification time when it was checked
    mtime_ns: int

    @classmethod
    def open(cls, path, dataset) -> "HDF5RowReader":
        """Check the file and the dataset (see :mod:`emkit.io.hdf5_features`) and describe it.

        Parameters
        ----------
        path : str or path-like
            A regular HDF5 file.
        dataset : str
            The path of a 2-D integer or float dataset, reached through hard links only.

        Returns
        -------
        HDF5RowReader

        Raises
        ------
        KeyError
            No such dataset.
        FeatureError
            A damaged file, a group, a soft or external link, an empty dataset, or one
            :func:`~emkit.io.hdf5_features.check_feature_dataset` refuses.
        """
        import h5py

        from .hdf5_features import H5_ERRORS, check_feature_dataset, open_hdf5
        from .untrusted import FeatureError

        path = os.fspath(path)
        where = f"{path}: dataset {dataset!r}"
        with open_hdf5(path) as (f, info):  # info: of the file checked and read
            try:
                d = _hard_linked(f, dataset, path)
                if not isinstance(d, h5py.Dataset):
                    raise FeatureError(f"{where} is a group, not a dataset")
                check_feature_dataset(d, where, info.st_size, None)
                if 0 in d.shape:
                    raise FeatureError(f"{where} is empty (shape {d.shape})")
                return cls(path, dataset, tuple(d.shape), d.dtype, info.st_size, info.st_mtime_ns)
            except H5_ERRORS as exc:
                if isinstance(exc, FeatureError) or (isinstance(exc, KeyError)
                                                     and "has no dataset" in str(exc)):
                    raise
                raise FeatureError(f"{where}: a damaged HDF5 file (h5py: {exc})") from None

    @property
    def ndim(self) -> int:
        """2: the dataset is a (n_rows, n_features) matrix."""
        return 2

    def __getitem__(self, key):
        from .hdf5_features import H5_ERRORS, open_hdf5
        from .untrusted import FeatureError, show_path

        def unchanged(info):  # since open() checked it, heaps included: HDF5 reads no byte
            if (info.st_size, info.st_mtime_ns) != (self.size, self.mtime_ns):
                raise FeatureError(
                    f"{self.path} changed after it was opened (size {self.size} -> "
                    f"{info.st_size} bytes, or its modification time): open it again "
                    "(hdf5_frames)")

        with open_hdf5(self.path, heaps=False, check=unchanged) as (f, _):
            try:
                block = f[self.dataset][key]
            except H5_ERRORS as exc:  # damaged chunks are found only when read
                raise FeatureError(f"{self.path}: dataset {self.dataset!r}: cannot read rows "
                                   f"{key!r} (h5py: {exc})") from None
        rows = key[0] if isinstance(key, tuple) and key else key
        first = (rows.start or 0) if isinstance(rows, slice) else 0
        where = f"{show_path(self.path)}: dataset {self.dataset!r}"
        if isinstance(rows, slice) and np.ndim(block) == 2 and len(block):
            where += f", rows {first} to {first + len(block) - 1}"
        return _finite_rows(block, where, first)


def _finite_rows(block, where: str, first_row: int = 0):
    """``block`` (n_rows, n_features), unless it holds NaN or infinity: a
    :class:`~emkit.io.untrusted.FeatureError` then names ``where`` and the first such entry (its
    row counted from ``first_row``), never the values.  One sum first, a search only when it is
    not finite (a dask task raises this, where a later check could no longer name the file)."""
    from .untrusted import FeatureError

    if block.dtype.kind != "f" or block.size == 0 or np.isfinite(np.add.reduce(block, axis=None)):
        return block
    bad = np.argwhere(~np.isfinite(block))
    if not len(bad):
        return block  # the sum overflowed
    index = tuple(int(i) for i in bad[0])
    kind = "NaN" if np.isnan(block[index]) else "infinity"
    position = f"row {first_row + index[0]}" + (f", column {index[1]}" if len(index) == 2 else "")
    raise FeatureError(f"{where} contains {kind} (first at {position}): features must be finite "
                       "numbers")


def _hard_linked(f, dataset: str, path: str):
    """``f[dataset]`` reached through hard links only (a soft or external link could lead
    anywhere, another file included)."""
    import h5py

    from .._describe import describe
    from ._message_text import message_subject, show_path
    from .untrusted import FeatureError

    obj = f
    for part in [p for p in dataset.split("/") if p]:
        key = part.encode()
        if not isinstance(obj, h5py.Group) or not obj.id.links.exists(key):
            raise KeyError(f"{show_path(path)} has no dataset {describe(dataset)}")
        if obj.id.links.get_info(key).type != h5py.h5l.TYPE_HARD:
            raise FeatureError(f"{message_subject(path, '')}: dataset {describe(dataset)} is "
                               "reached through a soft or external link (refused: it could "
                               "lead to another file)")
        obj = obj[part]
    return obj


def hdf5_frames(path, dataset: str = "frames", chunk_rows: int = 262_144):
    """A lazy dask array over a 2-D HDF5 dataset, read chunk by chunk by the tasks.

    A chunk holding NaN or infinity fails, when it is read, with a
    :class:`~emkit.io.untrusted.FeatureError` naming the file, the dataset and the rows; so does
    one read after the file changed.

    Parameters
    ----------
    path : str or path-like
        A regular HDF5 file, checked here (:meth:`HDF5RowReader.open`).
    dataset : str, default "frames"
        The path of the 2-D dataset in the file.
    chunk_rows : int, default 262144
        Rows per dask chunk (positive).

    Returns
    -------
    dask array of shape (N, D)
        Of the dataset's dtype, chunked ``(chunk_rows, D)``.

    Raises
    ------
    KeyError
        No such dataset.
    FeatureError
        As :meth:`HDF5RowReader.open`.
    """
    import dask.array as da

    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    reader = HDF5RowReader.open(path, dataset)
    # named by the file's state too: a rewritten file is another array (nothing cached reused)
    name = f"hdf5-frames-{reader.path}-{dataset}-{chunk_rows}-{reader.size}-{reader.mtime_ns}"
    return da.from_array(reader, chunks=(chunk_rows, reader.shape[1]), lock=False, name=name,
                         asarray=True)


def _npy_shape(path):
    from .numpy_files import npy_layout  # the header only, checked against the file's size

    return npy_layout(path)


def _load(path):
    from .numpy_files import read_npy

    return read_npy(path)


def _load_checked(path, shape, dtype):
    """The frames of the ``.npy`` file ``path``: ``shape`` (its header's, when the graph was
    built), finite, as ``dtype``; errors name the file."""
    from .untrusted import FeatureError, show_path

    frames = _load(path)
    if frames.shape != tuple(shape):
        raise FeatureError(f"{show_path(path)} changed after its header was read: expected shape "
                           f"{tuple(shape)}, got {frames.shape} (build the input again)")
    return _finite_rows(frames, show_path(path)).astype(dtype, copy=False)


def _load_stack(paths, shapes, dtype):
    """The frames of consecutive ``.npy`` files (``shapes``: theirs, one per path), stacked, as
    ``dtype``."""
    frames = [_load_checked(p, s, dtype) for p, s in zip(paths, shapes)]
    return np.concatenate(frames, axis=0) if len(frames) > 1 else frames[0]


def list_feature_files(directory, pattern: str = "*.npy"):
    """The files matching a glob pattern in a directory, sorted (a stable order).

    Parameters
    ----------
    directory : str or path-like
    pattern : str, default "*.npy"
        A :mod:`glob` pattern, relative to ``directory``.

    Returns
    -------
    list of str
        The matching paths, sorted.

    Raises
    ------
    FileNotFoundError
        No file matches.
    """
    paths = sorted(glob.glob(os.path.join(os.fspath(directory), pattern)))
    if not paths:
        raise FileNotFoundError(f"no file matches {pattern!r} in {os.fspath(directory)!r}")
    return paths


def directory_frames(directory, pattern: str = "*.npy", files_per_chunk: int = 64):
    """Frames of every ``.npy`` file of a directory, stacked lazily into one (N, D) dask array.

    Only the file headers are read here (for the shapes); each chunk concatenates
    ``files_per_chunk`` consecutive files when a task needs it.  The dtype is the files' dtypes
    promoted as numpy promotes them (``numpy.result_type``: float64 if any file is float64), in
    every chunk.  A file holding NaN or infinity, or changed since its header was read, fails the
    task that reads it with a :class:`~emkit.io.untrusted.FeatureError` naming it.

    Parameters
    ----------
    directory : str or path-like
    pattern : str, default "*.npy"
        A :mod:`glob` pattern of ``.npy`` files, relative to ``directory``; the files are taken
        in sorted order.
    files_per_chunk : int, default 64
        Files per dask chunk (positive).

    Returns
    -------
    dask array of shape (N, D)
        N the total of the files' rows.

    Raises
    ------
    FileNotFoundError
        No file matches.
    ValueError
        A file that does not hold a 2-D array, or not of the first file's width D.
    FeatureError
        A ``.npy`` header that :func:`~emkit.io.numpy_files.npy_layout` refuses.
    """
    import dask
    import dask.array as da

    files_per_chunk = check_positive_int(files_per_chunk, "files_per_chunk")
    paths = list_feature_files(directory, pattern)
    shapes = [_npy_shape(p) for p in paths]
    dims = {s[0][1] if len(s[0]) == 2 else None for s in shapes}
    if len(dims) != 1 or None in dims:
        bad = next(p for p, s in zip(paths, shapes) if len(s[0]) != 2 or s[0][1] != shapes[0][0][1])
        raise ValueError(f"every file must hold a 2-D (n_frames, n_features) array of the same width; "
                         f"{bad} has shape {_npy_shape(bad)[0]}, {paths[0]} has {shapes[0][0]}")
    dtype = np.result_type(*[s[1] for s in shapes])
    blocks = []
    for start in range(0, len(paths), files_per_chunk):
        group = paths[start:start + files_per_chunk]
        group_shapes = [s[0] for s in shapes[start:start + files_per_chunk]]
        rows = sum(s[0] for s in group_shapes)
        blocks.append(da.from_delayed(dask.delayed(_load_stack)(group, group_shapes, dtype),
                                      shape=(rows, shapes[0][0][1]), dtype=dtype))
    return da.concatenate(blocks, axis=0)


def _stats_of_file(ubm, path):
    from .untrusted import FeatureError, show_path

    frames = _load(path)
    n_features = ubm.means.shape[1]
    if frames.ndim != 2 or frames.shape[1] != n_features:
        raise FeatureError(f"{show_path(path)} must hold a 2-D (n_frames, {n_features}) array "
                           f"(the UBM's {n_features} features); got shape {frames.shape}")
    return ubm.acc_stats(_finite_rows(frames, show_path(path)))


def directory_statistics(ubm, directory, pattern: str = "*.npy", npartitions: int | None = None):
    """A dask bag with one :class:`~emkit.GMMStats` per file (per utterance), computed on the workers.

    This is the input of ``IVectorMachine.fit`` and (with labels) of ISV/JFA training.  The UBM is
    one task of the graph (sent once to each worker that needs it).  The Gaussian selection in
    force here (``emkit.config_context(gselect_top_k=...)``) is the one the workers use.  A file
    that is not a finite (n_frames, D) array fails the task that reads it with a
    :class:`~emkit.io.untrusted.FeatureError` naming it.

    Parameters
    ----------
    ubm : GMMMachine
        The fitted UBM, D features.
    directory : str or path-like
    pattern : str, default "*.npy"
        A :mod:`glob` pattern of ``.npy`` files, relative to ``directory``; taken in sorted order.
    npartitions : int or None, default None
        Partitions of the bag (positive; None: 64), at most one per file.

    Returns
    -------
    bag : dask.bag.Bag
        One GMMStats per file, in the order of ``paths``.
    paths : list of str
        The files, sorted.

    Raises
    ------
    FileNotFoundError
        No file matches.
    """
    import dask

    from .._backend import bag_from_parts
    from .._config import get_config

    config = get_config()  # (a worker process has its own settings: the caller's are sent)
    selection = (config["gselect_top_k"], config["gselect_min_posterior"])

    npartitions = check_positive_int(npartitions, "npartitions", allow_none=True)
    paths = list_feature_files(directory, pattern)
    n_parts = min(len(paths), npartitions or 64)
    edges = np.linspace(0, len(paths), n_parts + 1).round().astype(int)
    shared_ubm = dask.delayed(ubm, pure=True, traverse=False)  # one copy in the graph
    # one task per partition (a chain of two tasks, file names then statistics, costs a scheduler
    # round trip between them)
    return bag_from_parts(_stats_of_files, [(tuple(paths[a:b]), shared_ubm, selection)
                                           for a, b in zip(edges[:-1], edges[1:])]), paths


def _stats_of_files(paths, ubm, selection=(None, 0.0)):
    from .._config import config_context

    top_k, min_posterior = selection
    with config_context(gselect_top_k=top_k, gselect_min_posterior=min_posterior):
        return [_stats_of_file(ubm, path) for path in paths]

