"""emkit's spill files: the partitions of a dask bag written by the workers to HDF5 files, and
read back (:mod:`._cache`, ``dask_cache="disk"``).

A fit's files are in the directories of :mod:`._spill_dirs` (named so that they cannot collide
between fits, workers or retries; private to their owner).  GMMStats are written as arrays, a
row per item, and so are the statistics of (label, GMMStats) pairs, each row's label pickled
beside it; other items are pickled, their arrays out of band (each a dataset of its own, read
back in place).  A file is read back only as :func:`~._spill_open.open_spill_file` opens it:
this user's regular file in its private folder, no link, no pipe (its pickles are never read
from anything else put at its path).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import uuid

import numpy as np

from ..io._h5_new_file import h5_file_writing
from ._spill_dirs import worker_directory
from ._spill_open import open_spill_file

__all__ = ["write_partition", "write_derived", "read_partitions", "SpilledItems", "SpilledRows"]

def write_partition(part, base, token, index) -> tuple:
    """Write a partition (GMMStats as arrays, other items pickled) to a new HDF5 file of this
    worker's spill directory; returns ``(path, number of items, file size)``."""
    from ..stats import GMMStats

    items = part if isinstance(part, list) else list(part)
    path = _new_path(base, token, index)
    with _spill_file(path) as writing:
        f = writing.file
        f.attrs["n_items"] = len(items)
        if items and all(isinstance(s, GMMStats) for s in items):
            _write_stats_rows(writing, items)
        elif _labelled_stats(items, GMMStats):  # (read back a block at a time, as statistics are)
            _write_stats_rows(writing, [pair[1] for pair in items])
            _write_labels(f, [pair[0] for pair in items])
        else:  # other items (arrays, stacked sets, odd pairs): pickled, arrays out of band
            _write_pickled(f, items)
    return path, len(items), os.path.getsize(path)


@contextlib.contextmanager
def _spill_file(path):
    """A new spill file (never an existing one) open for writing, as an ``H5Writing``; removed
    when its writing fails (a full disk raises an error naming it, rather than crashing libhdf5:
    io._h5_new_file)."""
    # made before the try: a file already at ``path`` raises FileExistsError and is not removed
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with h5_file_writing(path) as f:
            yield f
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def _labelled_stats(items, stats_type) -> bool:
    """True for (label, GMMStats) pairs (ISV/JFA's bags) whose statistics survive rows as they are
    (float64 arrays of one shape, an integer ``t``): others are pickled whole, so that stacking
    them names what is wrong with an item."""
    if not items:
        return False
    shapes = None
    for pair in items:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[1]) is not stats_type:
            return False
        s = pair[1]
        fields = (s.n, s.sum_px, s.sum_pxx)
        if not all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in fields):
            return False
        if shapes is None:
            shapes = [a.shape for a in fields]
        if ([a.shape for a in fields] != shapes or not isinstance(s.t, (int, np.integer))
                or isinstance(s.t, bool) or not isinstance(s.log_likelihood, (float, np.floating))):
            return False
    return True


def _write_labels(f, labels) -> None:
    """The labels of the items, each pickled on its own (a row of a variable-length dataset): a
    block of rows is read with its labels alone."""
    import h5py

    rows = f.create_dataset("labels", shape=(len(labels),), dtype=h5py.vlen_dtype(np.uint8))
    for i, label in enumerate(labels):
        rows[i] = np.frombuffer(pickle.dumps(label, protocol=5), dtype=np.uint8)


def _read_labels(f, rows: slice) -> list:
    return [pickle.loads(row.tobytes()) for row in f["labels"][rows]]


def _write_stats_rows(writing, items) -> None:
    """GMMStats as datasets of rows (``n`` (S, C), ``sum_px`` and ``sum_pxx`` (S, C, D)), created
    at their size and written one item at a time (until a write fails: ``writing.failed``): a
    stacked copy of a field (``np.stack``) held half a partition more while it was written."""
    f = writing.file
    f["t"] = np.array([s.t for s in items], dtype=np.int64)
    f["log_likelihood"] = np.array([s.log_likelihood for s in items], dtype=np.float64)
    for name in ("n", "sum_px", "sum_pxx"):
        first = np.asarray(getattr(items[0], name))
        rows = f.create_dataset(name, shape=(len(items), *first.shape), dtype=np.float64)
        for i, s in enumerate(items):
            row = np.asarray(getattr(s, name), dtype=np.float64)
            if row.shape != first.shape:
                raise ValueError(f"the statistics to spill differ in shape: item {i} has {name} "
                                 f"of shape {row.shape}, item 0 {first.shape}")
            rows[i] = row
            if writing.failed:  # (raised when the file is closed)
                return


def _new_path(base, token, index) -> str:
    """A new spill file's path in this worker's directory (created).  (A retried task writes a
    new file: the name holds a random part.)"""
    directory = worker_directory(base, token)
    os.makedirs(directory, mode=0o700, exist_ok=True)  # biometric data: the owner's alone
    return os.path.join(directory, f"part-{index:06d}-{uuid.uuid4().hex[:8]}.h5")


def _write_pickled(f, items) -> None:
    """``items`` pickled into the open HDF5 file or group ``f``: the stream, and the buffers of its
    contiguous arrays as datasets of their own (pickle protocol 5, out of band)."""
    buffers = []
    stream = pickle.dumps(items, protocol=5, buffer_callback=buffers.append)
    f["pickled"] = np.frombuffer(stream, dtype=np.uint8)
    group = f.create_group("buffers")
    for i, buffer in enumerate(buffers):
        group[str(i)] = np.frombuffer(buffer.raw(), dtype=np.uint8)


def _read_pickled(f) -> list:
    """What :func:`_write_pickled` wrote: the arrays are the buffers read from the file, not
    copies of them (unpickling copies took three times as long as reading, page faults included)."""
    group = f["buffers"]
    buffers = [group[str(i)][...] for i in range(len(group))]
    return pickle.loads(f["pickled"][...], buffers=buffers)


def write_derived(base, token, index, fn, paths, piece_items, args) -> tuple:
    """Write the partition ``fn(items of the spill files paths, *args)``, derived from a spilled
    one, to a spill file of this worker; returns ``(path, number of items, file size)``.

    Without ``piece_items`` (None), the whole partition is read, derived and freed before the
    result is written.  With ``piece_items``, ``fn(piece, *args, start=i)`` is applied to
    consecutive pieces of that many items, ``i`` the index in the partition of the piece's first
    item (the caller guarantees that their results, concatenated, are ``fn`` of the whole
    partition): each piece is read, derived and written (a group of the file) before the next is
    read, so that a worker holds one piece and its result, not the partition, its result and
    their copies being written (a partition's centred i-vector batches took 3.5x its size).
    With ``piece_items="streamed"``, ``fn(source, *args)`` yields the derived pieces (lists),
    each written before the next is asked for: ``source`` is the partition as
    :class:`SpilledRows` (read as ``fn`` asks: its blocks, or the rows it names,
    :meth:`SpilledRows.arrays`) when its files hold GMMStats, else its items read whole.
    """
    if piece_items == "streamed":
        derived_pieces = fn(_partition_source(paths), *args)
    else:
        derived_pieces = _derived(fn, paths, piece_items, args)
    path, n_items, k = _new_path(base, token, index), 0, 0
    with _spill_file(path) as writing:
        groups = writing.file.create_group("pieces")
        for derived in derived_pieces:  # (no enumerate: its reused tuple would hold the last one)
            _write_pickled(groups.create_group(str(k)), derived)
            n_items, k = n_items + len(derived), k + 1
            del derived
            if writing.failed:  # no more pieces derived: the failure is raised on closing
                break
        writing.file.attrs["n_items"] = n_items
    return path, n_items, os.path.getsize(path)


def _derived(fn, paths, piece_items, args):
    """``fn`` of the partition whole (``piece_items`` None) or of its consecutive pieces, each
    read when its result is asked for (see :func:`write_derived`)."""
    pieces = _whole(paths) if piece_items is None else _pieces(paths, piece_items)
    start = 0
    for piece in pieces:
        derived = fn(piece, *args) if piece_items is None else fn(piece, *args, start=start)
        start += len(piece)
        del piece  # the source freed before its result is written (_pieces keeps none)
        yield derived
        del derived


def _partition_source(paths):
    """The partition of the spill files ``paths``: :class:`SpilledRows` of all of it when they
    hold GMMStats (or (label, GMMStats) pairs), else the list of its items."""
    layout = _rows_layout(paths)
    if layout is None:
        return read_partitions(*paths)
    lengths, labelled = layout
    return SpilledRows(paths, lengths, 0, sum(lengths), labelled)


def _whole(paths):
    yield read_partitions(*paths)


def _pieces(paths, size: int):
    """The items of the spill files ``paths`` in consecutive pieces of ``size`` (the last one
    shorter), each read when it is asked for: :class:`SpilledRows` when the files hold GMMStats
    (read as the piece is iterated), else lists (whole files of other items).  No reference to
    a piece is kept once it is handed over."""
    layout = _rows_layout(paths)
    if layout is not None:
        lengths, labelled = layout
        total = sum(lengths)
        for start in range(0, total, size):
            yield SpilledRows(paths, lengths, start, min(start + size, total), labelled)
        return
    pending = []
    for path in paths:
        rows = _read_spill_file(path)
        pending.extend(rows)
        del rows
        while len(pending) >= size:
            yield _take(pending, size)
    if pending:
        yield _take(pending, len(pending))


def _rows_layout(paths) -> tuple | None:
    """``(lengths, labelled)`` of spill files of statistics written as rows: their numbers of
    items, and whether each item is a (label, GMMStats) pair (``labels`` beside the rows);
    None when a file holds other items, or some hold pairs and others statistics."""
    lengths, kinds = [], set()
    for path in paths:
        with open_spill_file(path) as f:
            if int(f.attrs["n_items"]) == 0:
                lengths.append(0)
                continue
            if "pieces" in f or "pickled" in f:
                return None
            lengths.append(int(f["t"].shape[0]))
            kinds.add("labels" in f)
    return None if len(kinds) > 1 else (lengths, kinds == {True})


#: Bytes of statistics read at a time (at least one item) when iterating spill files.
_BLOCK_BYTES = 8 * 2**20


class SpilledRows:
    """The GMMStats ``start:stop`` of spill files of statistics (``lengths``: theirs), read as they
    are iterated, a block of at most :data:`_BLOCK_BYTES` at a time (:meth:`blocks`): a piece of
    a spilled partition, never held whole unless its reader keeps it.  ``len`` reads nothing.
    ``labelled``: the files hold (label, GMMStats) pairs, which it iterates (:meth:`labels`
    reads the labels alone, :meth:`statistics` is the piece without them)."""

    def __init__(self, paths, lengths, start: int, stop: int, labelled: bool = False):
        self.paths, self.lengths, self.start, self.stop = tuple(paths), tuple(lengths), start, stop
        self.labelled = labelled

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self):
        for block in self.blocks():
            yield from block

    def arrays(self, index, names=("n", "sum_px")) -> list:
        """The arrays ``names`` (fields of GMMStats, as written) of the piece's items ``index``
        (distinct, in that order), each (len(index), ...) float64: the items' rows read in the
        files' order, at most :data:`_BLOCK_BYTES` of statistics at a time, and put in place
        (nothing else read; h5py reads a list of rows at once, a row at a time took 6x as
        long)."""
        index = np.asarray(index, dtype=np.int64) + self.start
        order = np.argsort(index, kind="stable")
        wanted = index[order]  # read in the files' order
        if (not len(index) or wanted[0] < self.start or wanted[-1] >= self.stop
                or (np.diff(wanted) == 0).any()):
            raise IndexError(f"index: expected distinct items of the piece, 0 to "
                             f"{len(self) - 1}; got {len(index)} items")
        ends = np.cumsum((0,) + self.lengths)  # file k holds items ends[k]:ends[k + 1]
        file_of = np.searchsorted(ends, wanted, side="right") - 1
        out = None
        for k in np.unique(file_of):
            in_file = np.flatnonzero(file_of == k)
            with open_spill_file(self.paths[k]) as f:
                datasets = [f[name] for name in names]
                if out is None:
                    out = [np.empty((len(index),) + d.shape[1:]) for d in datasets]
                step = _block_rows(f)
                for lo in range(0, len(in_file), step):
                    chunk = in_file[lo : lo + step]
                    rows = wanted[chunk] - ends[k]
                    for dataset, array in zip(datasets, out):
                        array[order[chunk]] = dataset[rows]
        return out

    def statistics(self) -> "SpilledRows":
        """The piece's GMMStats without their labels."""
        return SpilledRows(self.paths, self.lengths, self.start, self.stop)

    def labels(self) -> list:
        """The labels of the piece's items, in order (``labelled`` files: else a ValueError)."""
        if not self.labelled:
            raise ValueError("labels: the spill files hold statistics without labels")
        out = []
        for path, (a, b) in self._ranges():
            with open_spill_file(path) as f:
                out.extend(_read_labels(f, slice(a, b)))
        return out

    def blocks(self):
        """Consecutive lists of the piece's items (GMMStats, or (label, GMMStats) pairs when
        ``labelled``), each read when it is asked for."""
        for path, (a, b) in self._ranges():
            with open_spill_file(path) as f:
                step = _block_rows(f)
            while a < b:
                rows = _read_spill_file(path, a, min(b, a + step), labelled=self.labelled)
                a += len(rows)
                yield rows
                del rows

    def _ranges(self):
        """``(path, (a, b))``: the rows ``a:b`` of each file that the piece covers."""
        first = 0  # index in the partition of the current file's first item
        for path, length in zip(self.paths, self.lengths):
            a, b = max(self.start - first, 0), min(self.stop - first, length)
            first += length
            if a < b:
                yield path, (a, b)


def _block_rows(f) -> int:
    """GMMStats of the open spill file ``f`` in :data:`_BLOCK_BYTES` (at least one)."""
    C, D = f["sum_px"].shape[1:]
    return max(1, _BLOCK_BYTES // ((2 * C * D + C) * 8))


def _take(items: list, n: int) -> list:
    """The first ``n`` items, removed from ``items``."""
    head = items[:n]
    del items[:n]
    return head


def read_partitions(*paths) -> list:
    """The items of spill files, in order."""
    return [item for path in paths for item in _read_spill_file(path)]


class SpilledItems:
    """The items of spill files, in order, read as they are iterated: a derived piece (a group
    ``pieces/<k>``: one E-step batch, one stacked training set) or a block of
    :data:`_BLOCK_BYTES` of GMMStats at a time (a file of other items whole).  What a pass over
    a spilled partition reads: it then holds one piece, not the partition
    (:func:`read_partitions`), unless it keeps them (a list of them).  Iterable again
    (every iteration reads the files); pickles as its paths."""

    def __init__(self, *paths):
        self.paths = paths

    def __iter__(self):
        for path in self.paths:
            yield from _spill_file_pieces(path)

    def __reduce__(self):
        return SpilledItems, self.paths


def _spill_file_pieces(path):
    with open_spill_file(path) as f:
        k = len(f["pieces"]) if "pieces" in f else None
        step = _block_rows(f) if k is None and "pickled" not in f else 1
    if k is None:  # statistics (rows), or other items (the whole file at start 0)
        start = 0
        while True:
            rows = _read_spill_file(path, start, start + step)
            if not rows:
                return
            start += len(rows)
            yield from rows
            del rows
    for i in range(k):
        yield from _read_spill_file(path, piece=i)


def _read_spill_file(path, start: int = 0, stop: int | None = None,
                     piece: int | None = None, labelled: bool = True) -> list:
    """Items ``start:stop`` of a spill file (its rows of GMMStats, each with its label in a file
    of pairs unless not ``labelled``; the whole file of other items, pickled whole or by
    pieces, when ``start`` is 0, and nothing after that); ``piece``: the items of that derived
    piece alone."""
    from ..stats import GMMStats

    with open_spill_file(path) as f:
        if "pieces" in f:
            pieces = f["pieces"]
            if piece is not None:
                return _read_pickled(pieces[str(piece)])
            return [item for k in range(len(pieces) if start == 0 else 0)
                    for item in _read_pickled(pieces[str(k)])]
        if "pickled" in f:
            return _read_pickled(f) if start == 0 else []
        rows = slice(start, stop)
        t, ll = f["t"][rows], f["log_likelihood"][rows]
        n, px, pxx = f["n"][rows], f["sum_px"][rows], f["sum_pxx"][rows]
        labels = _read_labels(f, rows) if labelled and "labels" in f else None
    out = []
    for i in range(len(t)):
        s = GMMStats(*px.shape[1:])
        s.init_fields(float(ll[i]), int(t[i]), n[i], px[i], pxx[i])
        out.append(s if labels is None else (labels[i], s))
    return out
