"""Passes over a bag kept on the workers of a ``distributed`` client
(:func:`~emkit._backend._cache.partition_futures`) or read from spill files
(:func:`~emkit._backend._cache.partition_files`): one task per partition, submitted without a
task graph, the partial sums gathered straight from the workers and added here."""

from __future__ import annotations

import numpy as np

from . import _SCATTER_BYTES, _add, _array_bytes, _call_unpacked, tree_sum
from ._dask_progress import futures_counted

__all__ = ["map_futures", "map_files"]

#: A pass over partitions held on the workers gathers at most this many partial sums to the
#: client (adjacent ones are added on the workers first, in a fixed order, when there are more).
_GATHER_PARTS = 8


def map_futures(client, chunk_fn, futures, params, progress=None):
    """:func:`map_reduce` of a bag kept on the workers (:func:`~._cache.partition_futures`): one
    ``client.submit`` per partition (no task graph to build, optimise and send), the parameters
    sent once to every worker when large, and the partial sums gathered straight from the
    workers and added here, in partition order.  A worker lost mid-pass is handled by the
    scheduler as in any graph: the partitions are recomputed from their lineage.  ``progress``
    counts the partitions done (:func:`~._dask_progress.futures_counted`)."""
    shared = _shared(client, params)
    parts = [client.submit(_call_unpacked, chunk_fn, f, shared, pure=False) for f in futures]
    return _gathered_sum(client, parts, progress)


def map_files(client, chunk_fn, files, params, progress=None):
    """:func:`map_futures` of a bag read from spill files (:func:`~._cache.partition_files`):
    one task per partition runs ``chunk_fn`` on the items of its files, read as it iterates
    them (:class:`~._spill_files.SpilledItems`).  (A dask graph
    per pass cost 0.1-0.15 s of building, optimising and scheduling on a 2-core client.)"""
    from ._spill_files import SpilledItems

    shared = _shared(client, params)
    parts = [client.submit(_call_on_files, chunk_fn, SpilledItems, paths, shared, pure=False)
             for paths in files]
    return _gathered_sum(client, parts, progress)


def _shared(client, params):
    """``params`` as the tasks get them: sent once to every worker when large."""
    if _array_bytes(params) <= _SCATTER_BYTES:
        return params
    (future,) = client.scatter([params], broadcast=True, hash=False, direct=True)
    return future


def _call_on_files(chunk_fn, read, paths, params):
    return _call_unpacked(chunk_fn, read(*paths), params)


def _gathered_sum(client, parts, progress=None):
    """The sum of the results of the futures ``parts``, in order (see :func:`map_futures`),
    each part counted by ``progress`` as it finishes."""
    leaves = list(parts) if progress is not None else None
    while len(parts) > _GATHER_PARTS:
        paired = [client.submit(_add, parts[i], parts[i + 1], pure=False)
                  for i in range(0, len(parts) - 1, 2)]
        parts = paired + parts[len(parts) - len(parts) % 2:]
    if leaves is not None:
        futures_counted(leaves, [1] * len(leaves), progress)
    return _sum_received(client.gather(parts, direct=True))


def _sum_received(values):
    """:func:`tree_sum` (same pairs, same order) of partial sums just received from the workers,
    which nothing else holds: added in place when their type accumulates in place (emkit's
    statistics; an i-vector accumulator is 100 MB and more, and a fresh one per addition is as
    many page faults)."""
    values = list(values)
    if not all(_adds_in_place(v) for v in values[:-1]):
        return tree_sum(values)
    while len(values) > 1:
        for i in range(0, len(values) - 1, 2):
            values[i] += values[i + 1]
        values = values[::2]
    return values[0]


def _adds_in_place(value) -> bool:
    if isinstance(value, (np.ndarray, tuple, list)) or "__iadd__" not in type(value).__dict__:
        return False
    return _all_writeable(value)


def _all_writeable(obj, depth: int = 0) -> bool:
    if isinstance(obj, np.ndarray):
        return obj.flags.writeable
    if depth > 3:
        return True
    fields = getattr(obj, "__dict__", None) or {}
    return all(_all_writeable(v, depth + 1) for v in fields.values())
