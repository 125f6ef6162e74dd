"""Input checks, batch sizes and the statistics stacked (and centred) for the kernels."""

from __future__ import annotations

import numpy as np

from .._backend import (is_cached, is_dask_collection, map_ordered, n_threads, partition_lengths,
                        prepared_on_workers)
from .._kernels import ivector as kiv
from .._kernels.compensated import centre_in_blocks
from .._validation import check_positive_int
from ..stats import GMMStats, as_stats_sequence


def _check_stats_sequence(X, name: str = "X"):
    """A non-empty list of GMMStats, or a dask bag (validated partition by partition); a numpy
    object array of GMMStats (``np.array(list_of_stats)``) is a list."""
    X = as_stats_sequence(X)
    if is_dask_collection(X):
        if not hasattr(X, "npartitions") or hasattr(X, "chunks"):
            raise TypeError(f"{name} must be a list of GMMStats or a dask bag of them; got a "
                            f"{type(X).__name__}")
        return X
    if isinstance(X, GMMStats):
        raise TypeError(f"{name} must be a list of GMMStats (one per utterance); got a single "
                        "GMMStats")
    if isinstance(X, np.ndarray) or not hasattr(X, "__iter__"):
        raise TypeError(f"{name} must be a list of GMMStats (one per utterance); got "
                        f"{type(X).__name__}")
    X = list(X)
    if not X:
        raise ValueError(f"{name} is empty: expected at least one GMMStats")
    return X


#: ``fit`` stacks and centres the statistics once (not in every iteration) when their stacked
#: copy takes at most this many bytes.
_CENTRED_CACHE_BYTES = 512 * 2**20


def _centred_batches(X, means, batch_size: int, name: str = "X", shared: bool = False,
                     limit: bool = True, first: int = 0):
    """The list ``X`` of GMMStats as :class:`~emkit._kernels.ivector.CentredBatch` of at most
    ``batch_size`` utterances; unless ``shared`` (the threads split each batch), at least one per
    thread (each thread takes its own batches); None when their copy would exceed
    :data:`_CENTRED_CACHE_BYTES`.  Errors name ``name[first + i]`` for the item ``i`` of ``X``."""
    C, D = means.shape
    if limit and len(X) * (C * D + C) * 8 > _CENTRED_CACHE_BYTES:
        return None
    size = batch_size if shared else min(batch_size, max(1, -(-len(X) // n_threads())))

    def centre(start):
        b = GMMStats.stack(X[start : start + size], name=name, shape=(C, D), second_order=True,
                           offset=first + start)
        return kiv.centre_batch(b.n, b.sum_px, b.sum_pxx, means)

    return map_ordered(centre, range(0, len(X), size))


def _centred_partition(part, first, means, batch_size, start=0):
    """:func:`_centred_batches` of a bag's partition, whose first item is item ``first`` of the
    bag (or of its piece starting at item ``start`` of the partition).  A piece of at most
    ``batch_size`` items read from spill files as it is iterated (``blocks()``: lists of
    GMMStats) is one batch, centred block by block (:func:`~emkit._kernels.compensated.centre_in_blocks`):
    the same numbers, without holding its statistics whole."""
    if hasattr(part, "blocks") and 0 < len(part) <= batch_size:
        return [_centred_in_blocks(part, means, first + start)]
    return _centred_batches(list(part), means, batch_size, shared=True, limit=False,
                            first=first + start)


def _centred_in_blocks(piece, means, first: int):
    C, D = means.shape

    def blocks():
        offset = first
        for items in piece.blocks():
            b = GMMStats.stack(items, name="X", shape=(C, D), second_order=True, offset=offset)
            offset += len(items)
            del items
            yield b.n, b.sum_px, b.sum_pxx

    return kiv.CentredBatch(*centre_in_blocks(blocks, means))


def _partition_length(part):
    return [len(list(part))]


def training_data(X, means, batch_size: int, dim_t: int):
    """What ``fit``'s E-steps read: a list of :class:`~emkit._kernels.ivector.CentredBatch`
    (validated, stacked and centred once), or ``X`` itself when that copy would be too large
    (then stacked in every E-step; its first item validated here) or a dask bag (its partitions
    centred once on the workers when ``fit`` keeps the bag there or spills it, see
    :mod:`emkit._backend._cache`)."""
    if is_dask_collection(X):
        if not is_cached(X):
            return X
        # each partition told where it starts: errors name an item by its index in the whole bag;
        # a spilled partition is centred batch by batch (its batches are the pieces)
        lengths = partition_lengths(X) or X.map_partitions(_partition_length).compute()
        firsts = np.cumsum([0] + list(lengths))[:-1]
        return prepared_on_workers(_centred_partition, X, means, batch_size,
                                   part_args=[(int(f),) for f in firsts], piece_items=batch_size)
    data = _centred_batches(X, means, batch_size, shared=_shared_accumulator(len(means), dim_t))
    if data is None:
        GMMStats.stack(X[:1], shape=means.shape, second_order=True)
        return X
    return data


#: Above this size of the (C, R, R) accumulator, the threads share one accumulator: they split
#: each batch (and the accumulator's rows) instead of each taking a slice of the list with an
#: accumulator of its own.  Small: per-thread accumulators are zeroed (faulted in) and summed in
#: every iteration, which cost more than splitting large batches (C=256, R=200, 400 utterances on
#: 2 threads: E-step 0.87-1.0 s per-thread, 0.55-0.6 s shared; measured).
_MAX_ACCUMULATOR_PER_THREAD = 16 * 2**20


def _shared_accumulator(C: int, R: int) -> bool:
    return C * R * R * 8 > _MAX_ACCUMULATOR_PER_THREAD


def _batch_size(machine, projection: bool = False, concurrent: int = 1) -> int:
    """``machine.batch_size``, or the default E-step batch (``projection``: the default batch of
    a projection running ``concurrent`` batches at once)."""
    size = getattr(machine, "batch_size", None)
    if size is None:
        if projection:
            return kiv.projection_batch_size(*np.shape(machine.T), concurrent=concurrent)
        return kiv.default_batch_size(*np.shape(machine.T))
    return check_positive_int(size, "batch_size")


#: Smallest batch worth a thread of its own when projecting.
_MIN_THREAD_BATCH = 32


def check_projection_parameters(T, sigma, C: int, D: int) -> None:
    """Refuse a T and sigma (assigned, or read from an older pickle) that the UBM's (C, D) and
    a projection cannot use: shapes other than (C, D, R) and (C, D), or a sigma <= 0 (its
    inverse made every i-vector NaN, with only numpy's warnings)."""
    if np.ndim(T) != 3 or np.shape(T)[:2] != (C, D) or np.shape(sigma) != (C, D):
        raise ValueError(f"T has shape {np.shape(T)} and sigma {np.shape(sigma)}; the "
                         f"UBM needs T ({C}, {D}, dim_t) and sigma ({C}, {D})")
    if not np.all(np.asarray(sigma) > 0):
        bad = tuple(int(i) for i in np.argwhere(~(np.asarray(sigma) > 0))[0])
        raise ValueError(f"IVectorMachine.sigma must be > 0 (variances); got "
                         f"{float(np.asarray(sigma)[bad])!r} at index {bad}")
