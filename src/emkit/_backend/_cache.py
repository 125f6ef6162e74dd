"""Dask training inputs computed once per ``fit``: kept on the workers, or spilled to their disks.

A dask bag of per-utterance statistics (``emkit.io.arrays.directory_statistics``: features read
and the UBM's E-step run by each partition's task) would otherwise be recomputed by every pass of
EM.  :func:`computed_once` computes it once, at the start of ``fit``, and hands ``fit`` a bag that
reads the result:

* ``"memory"``: the partitions are persisted on the workers, regrouped into one partition per
  worker thread (consecutive partitions, order kept: fewer tasks and per-task accumulators in
  every pass); with a ``distributed`` client each run is computed on the worker that keeps it
  (:mod:`._placed`) and the passes submit one task per run on its future
  (:func:`partition_futures`, :func:`emkit._backend._kept.map_futures`);
* ``"disk"`` (Kaldi-style): each partition is written by the worker that computed it to an HDF5
  file under ``<spill_directory>/emkit-spill-<random>.<client host>.<client pid>/<host>-<pid>/``
  (:mod:`._spill_dirs`: names that cannot collide between fits, workers or retries; the
  directories of killed clients are removed by the next disk fit on their host), and every pass
  reads the files (or, when the estimator derives its training data from them,
  :func:`prepared_on_workers`, the files of the derived data, written there once) as it
  iterates them, a piece at a time (:class:`~._spill_files.SpilledItems`), with a
  ``distributed`` client by one task per group of files submitted straight to the scheduler
  (:func:`partition_files`, :func:`emkit._backend._kept.map_files`); the directory is removed
  (on every worker) when ``fit`` ends, however it ends (its process killed: see
  :mod:`._spill_dirs`);
* ``"auto"`` (default) computes the first partition (of every run, with a client), estimates
  the whole size as its size times the number of partitions, and keeps the data in memory when
  that is at most ``dask_cache_fraction`` (default 0.25) of the summed memory limits of the
  workers (workers without a limit share their host's memory equally; this machine's memory
  without a ``distributed`` client: :func:`~._cluster.cluster_resources`), else spills them.  What
  i-vector and ISV/JFA training derive from the statistics once (centred batches, stacked
  session blocks, without the per-utterance second-order sums for ISV/JFA) is kept next to them
  in memory mode: at most 1.5x the statistics' size in all, so 0.25 leaves the workers more than half
  their memory for the passes' accumulators and for dask's own spilling threshold (0.6).

A dask array of frames (GMM, k-means) is persisted when its size fits the same budget (or with
``"memory"``); otherwise (or with ``"disk"``) it is read from its source at every pass, as before:
it is on disk already, and frames' posteriors depend on the parameters.  ``"off"`` leaves every
input as it is.  Choose with ``emkit.set_config(dask_cache=...)`` or ``emkit.config_context``.

The cached bag fingerprints (checkpoints) as the input bag does: its partitions remember how
many items each input partition had (:func:`piece_digests`).
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np

from . import _spill_dirs as spill_dirs
from . import _spill_files as spill_files
from ._cluster import cache_budget, cluster_resources, distributed_client

__all__ = ["computed_once", "cached_frames", "piece_digests", "is_cached",
           "prepared_on_workers", "partition_lengths", "partition_futures"]

#: name of a bag cached in memory -> the lengths of the input partitions in each of its partitions
_PIECES: dict = {}
#: names of the cached bags kept on the workers (the others are read from spill files)
_IN_MEMORY: set = set()
#: name of a cached bag read from spill files -> ``(spill base directory, this fit's token)``
_SPILLED: dict = {}
#: bag kept on the workers of a ``distributed`` client -> the futures of its partitions, in order
#: (the passes submit one task per partition on them: :func:`emkit._backend._kept.map_futures`)
_FUTURES = weakref.WeakKeyDictionary()
#: bag read from spill files -> the files of each of its partitions (the passes with a
#: ``distributed`` client submit one task per partition on them, as on kept futures)
_FILES = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def computed_once(X):
    """``X`` as ``fit`` should traverse it (see the module docstring); a context manager, so that
    what was cached is released (and spill files removed) when ``fit`` ends."""
    from .._config import get_config
    from . import is_bag, is_dask_collection

    from ._worker_heap import tuned_worker_heaps

    mode = get_config()["dask_cache"]
    with tuned_worker_heaps(X):  # the workers' freed memory reused until fit ends
        if mode == "off" or not is_dask_collection(X):
            yield X
        elif is_bag(X):
            with _cached_bag(X, mode) as bag:
                yield bag
        elif hasattr(X, "chunks") and hasattr(X, "nbytes"):
            yield _cached_array(X, mode)
        else:
            yield X


def cached_frames(X):
    """A dask array of frames persisted on the workers when the configuration says so (see the
    module docstring); anything else unchanged.  (Nothing to release at the end of ``fit``: the
    persisted chunks go when the array does.)"""
    from .._config import get_config
    from . import is_dask_collection

    mode = get_config()["dask_cache"]
    if mode == "off" or not (is_dask_collection(X) and hasattr(X, "chunks")):
        return X
    return _cached_array(X, mode)


def _cached_array(X, mode):
    import dask

    if mode == "disk" or (mode == "auto" and X.nbytes > cache_budget(distributed_client())):
        return X
    (persisted,) = dask.persist(X)
    return persisted


# -- bags ---------------------------------------------------------------------------------------
def _describe(part) -> tuple:
    """``(number of items, bytes)`` of a bag partition (numpy arrays, GMMStats, pairs)."""
    from dask.sizeof import sizeof

    part = part if isinstance(part, list) else list(part)
    return len(part), int(sizeof(part))


def _bytes_of(part) -> int:
    return _describe(part)[1]


def _concat(*parts) -> list:
    return [item for part in parts for item in part]


@contextlib.contextmanager
def _cached_bag(X, mode):
    import dask
    import dask.bag as db

    client = distributed_client()
    parts = list(X.to_delayed())
    if not parts:
        yield X
        return
    if client is not None and mode in ("auto", "memory"):
        from ._placed import cache_on_workers

        probe = _bytes_of if mode == "auto" else None
        joined, lengths = cache_on_workers(client, parts, probe, cache_budget(client))
        if joined is not None:
            bag = db.from_delayed([dask.delayed(f) for f in joined])
            _FUTURES[bag] = joined
            with _kept(bag, lengths):
                yield bag
            return
        mode, parts = "disk", lengths  # (the probed partitions, as futures)
    if mode == "auto":
        (parts[0],) = dask.persist(parts[0])
        (described,) = dask.compute(dask.delayed(_describe, pure=True)(parts[0]))
        mode = "memory" if described[1] * len(parts) <= cache_budget(client) else "disk"
    if mode == "memory":
        parts = list(dask.persist(*parts))  # (the first one, persisted already, is not recomputed)
        lengths = dask.compute(*[dask.delayed(_describe, pure=True)(p) for p in parts])
        groups = _groups(len(parts), cluster_resources(client)[1])
        merged = [dask.delayed(_concat, pure=True)(*parts[g]) for g in groups]
        persisted = dask.persist(*merged)
        bag = db.from_delayed(list(persisted))
        del parts, merged  # the input's partitions go once regrouped (only the groups are held)
        with _kept(bag, [[n for n, _ in lengths[g]] for g in groups]):
            yield bag
        return
    base, token = spill_dirs.spill_base(), spill_dirs.new_token()
    spill_dirs.remove_stale_spills(base)  # (of killed clients of this host)
    bag = None
    try:
        write = dask.delayed(spill_files.write_partition, pure=False)
        files = dask.compute(*[write(p, base, token, i) for i, p in enumerate(parts)])
        del parts
        groups = _spill_groups([size for _, _, size in files], client)
        bag = _spilled_bag([tuple(path for path, _, _ in files[g]) for g in groups])
        _PIECES[bag.name] = [[n for _, n, _ in files[g]] for g in groups]
        _SPILLED[bag.name] = (base, token)
        yield bag
    finally:
        if bag is not None:
            _PIECES.pop(bag.name, None)
            _SPILLED.pop(bag.name, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.run(spill_dirs.remove_spill, base, token)
        spill_dirs.remove_spill(base, token)


@contextlib.contextmanager
def _kept(bag, lengths):
    """``bag`` known as kept on the workers (with the lengths of the input partitions of each of
    its partitions) while ``fit`` runs."""
    _PIECES[bag.name] = lengths
    _IN_MEMORY.add(bag.name)
    try:
        yield
    finally:
        _PIECES.pop(bag.name, None)
        _IN_MEMORY.discard(bag.name)


def _spill_groups(sizes, client) -> list:
    """Consecutive spill files read by one task of a pass: at least one group per worker thread,
    each at most ``dask_cache_fraction`` of a thread's share of the memory (one file at least).
    Fewer, larger tasks: every task of a pass costs its own accumulators and their transfer."""
    memory, threads = cluster_resources(client)
    from .._config import get_config

    limit = get_config()["dask_cache_fraction"] * memory / threads
    target = max(-(-len(sizes) // threads), 1)
    groups, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= target or total + size > limit):
            groups.append(slice(start, i))
            start, total = i, 0
        total += size
    groups.append(slice(start, len(sizes)))
    return groups


def partition_futures(bag):
    """The futures of the partitions of a bag kept on the workers (in order), else None."""
    try:
        return _FUTURES.get(bag)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def partition_files(bag):
    """The spill files of each partition of a bag read from them (in order), else None."""
    try:
        return _FILES.get(bag)
    except TypeError:
        return None


def _spilled_bag(files):
    """A bag whose partition i holds the items of the spill files ``files[i]`` (a tuple)."""
    from . import bag_from_parts

    bag = bag_from_parts(spill_files.SpilledItems, files)
    _FILES[bag] = files
    return bag


def is_cached(X) -> bool:
    """True for a bag that :func:`computed_once` keeps in this ``fit`` (on the workers or in spill
    files)."""
    name = getattr(X, "name", None)
    return name in _IN_MEMORY or name in _SPILLED


def prepared_on_workers(fn, bag, *args, part_args=None, piece_items=None, streamed=None):
    """A bag of ``fn(partition, *part_args[i], *args)`` for every partition ``i`` of a cached bag
    (:func:`is_cached`), computed once and kept in its place: what an estimator derives from the
    statistics once per ``fit`` (stacked, centred), as it does in memory.  Kept on the workers
    (where the partitions are) for a bag kept there; written to spill files of this fit for a
    spilled bag, so that its passes read the derived data instead of deriving them again.
    ``part_args``: a tuple of arguments per partition (None: none).  ``piece_items``: ``fn`` of a
    partition is the concatenation of ``fn(piece, ..., start=i)`` of its consecutive pieces of
    that many items (the last one shorter; ``i`` the index in the partition of a piece's first
    item): a spilled partition is then derived and written piece by piece
    (:func:`~._spill_files.write_derived`), never whole in a worker's memory with its result.
    ``streamed``: for a spilled bag, derive with the generator ``streamed(source, *part_args[i],
    *args)`` instead, ``source`` the spilled partition read as it asks (its pieces written one
    by one as it yields them: ``write_derived``'s ``"streamed"``)."""
    import dask
    import dask.bag as db

    from . import bag_from_parts

    extra = [()] * bag.npartitions if part_args is None else [tuple(a) for a in part_args]
    if len(extra) != bag.npartitions:
        raise ValueError(f"part_args: expected {bag.npartitions} tuples, one per partition; "
                         f"got {len(extra)}")
    futures, files = partition_futures(bag), partition_files(bag)
    if files is not None and bag.name in _SPILLED:
        base, token = _SPILLED[bag.name]
        if streamed is not None:
            fn, piece_items = streamed, "streamed"
        write = dask.delayed(spill_files.write_derived, pure=False)
        written = dask.compute(*[write(base, token, i, fn, paths, piece_items, (*e, *args))
                                 for i, (paths, e) in enumerate(zip(files, extra))])
        return _spilled_bag([(path,) for path, _, _ in written])
    client = distributed_client() if futures is not None else None
    if client is None:
        args_of = [(p, *e, *args) for p, e in zip(bag.to_delayed(), extra)]
        (prepared,) = dask.persist(bag_from_parts(fn, args_of))
        return prepared
    # one task per partition, on the futures themselves (no graph to build and optimise)
    parts = [client.submit(fn, f, *e, *args, pure=False) for f, e in zip(futures, extra)]
    prepared = db.from_delayed([dask.delayed(f) for f in parts])
    _FUTURES[prepared] = parts
    return prepared


def partition_lengths(bag):
    """Items in each partition of a bag cached in memory (known from caching it), else None."""
    pieces = _PIECES.get(getattr(bag, "name", None))
    return None if pieces is None else [sum(p) for p in pieces]


def _groups(n_parts: int, n_groups: int) -> list:
    edges = np.linspace(0, n_parts, min(n_parts, n_groups) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def piece_digests(bag, digest):
    """Per-input-partition digests of a cached bag (None for another bag): its partitions are
    groups of the input's, whose lengths it remembers."""
    pieces = _PIECES.get(getattr(bag, "name", None))
    if pieces is None:
        return None
    import dask

    task = dask.delayed(_split_digests, pure=True)
    groups = dask.compute(*[task(part, lengths, digest)
                            for part, lengths in zip(bag.to_delayed(), pieces)])
    return len(sum(pieces, [])), [d for group in groups for d in group]


def _split_digests(part, lengths, digest):
    part, out, start = list(part), [], 0
    for n in lengths:
        out.append(digest(part[start : start + n]))
        start += n
    return out
