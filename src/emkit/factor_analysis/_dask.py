"""Dask inputs of ISV/JFA training, and the reference's per-class input form.

Dask inputs travel as ``(class index, GMMStats)`` pairs in a bag: every pass stacks each
partition in blocks (:func:`emkit.factor_analysis._estep.session_chunk`) and sums small additive
accumulators through :func:`emkit._backend.map_reduce`.  A bag that ``fit`` keeps on the workers
is stacked there once (:func:`stacked_on_workers`); a spilled one is written again as its blocks
(:func:`spilled_blocks`), which the passes read one at a time.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import bag_from_parts, is_delayed, n_threads, partition_lengths, prepared_on_workers
from ..stats import GMMStats, as_stats_sequence
from ._blocks import SessionBlock, TrainingSet, block_slices, in_memory, pair_codes, split
from .._labels import check_label_sequence
from ._labels import check_lengths, encode_labels, label_list


def is_input_dask_nested(X) -> bool:
    """Whether the first leaf of the (nested) list ``X`` is a ``dask.delayed`` object.

    Parameters
    ----------
    X : list, possibly of lists

    Returns
    -------
    bool
    """
    while isinstance(X, (list, tuple)) and len(X):
        X = X[0]
    return is_delayed(X)


def check_dask_input_samples_per_class(X, y):
    """Whether the input is dask, and the number of sessions of each class.

    Parameters
    ----------
    X : list of GMMStats, of per-class lists of them, or of dask.delayed lists
    y : sequence of labels of shape (n_sessions,), or of per-class label arrays (flattened)

    Returns
    -------
    input_is_dask : bool
    n_classes : int
    n_samples_per_class : list of int
        Sessions of each class, in the order of the sorted labels.
    """
    X = as_stats_sequence(X)
    input_is_dask = is_input_dask_nested(X)
    if input_is_dask and len(y) and np.ndim(y[0]) == 1:
        y = [label for labels in y for label in list(labels)]
    codes, classes = encode_labels(y)
    return input_is_dask, len(classes), np.bincount(codes, minlength=len(classes)).tolist()


def pair_up(codes, stats):
    """A bag partition: ``[(code, GMMStats), ...]`` (top-level so that it pickles)."""
    stats = list(stats)
    _check_partition_length(len(stats), len(codes))
    return [(int(c), s) for c, s in zip(codes, stats)]


def _check_partition_length(n_stats: int, n_codes: int) -> None:
    if n_stats != n_codes:
        raise ValueError(f"X and y have inconsistent numbers of sessions in a partition: "
                         f"{n_stats} statistics, {n_codes} labels")


def _check_pair(pair):
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError(
            f"with y=None, X must be a bag of (label, GMMStats) pairs; got {type(pair).__name__}"
        )


def _encode_pair(pair, index):
    _check_pair(pair)
    return (index[pair[0]], pair[1])


def _label_of(pair):
    _check_pair(pair)
    return pair[0]


def _partition_length(part):
    return [len(list(part))]


def _delayed_bag(groups, code_groups):
    """A bag with one partition of (code, GMMStats) pairs per group of delayed statistics."""
    return bag_from_parts(pair_up, [(codes, list(group) if isinstance(group, list) else group)
                                    for group, codes in zip(groups, code_groups)])


def delayed_training_set(X, codes, classes) -> TrainingSet:
    """A list of ``dask.delayed`` statistics (with their class indices) as a bag of pairs."""
    n_parts = min(len(X), max(n_threads(), math.ceil(len(X) / 256)))
    slices = split(len(X), n_parts)
    rows = _delayed_bag([list(X[s]) for s in slices], [codes[s] for s in slices])
    return TrainingSet(rows, classes, np.bincount(codes, minlength=len(classes)))


def is_nested(X, y) -> bool:
    """The reference's per-class form: X[k] a list (or delayed list) of stats, y[k] their labels."""
    first = y[0] if len(y) else None
    return (
        isinstance(y, (list, tuple))
        and len(y) == len(X)
        and isinstance(first, (list, np.ndarray))
        and np.ndim(first) == 1
        and (isinstance(X[0], (list, tuple)) or is_delayed(X[0]))
    )


def prepare_nested(X, y, shape, threads, step) -> TrainingSet:
    """The per-class form: in memory when every group is a list of GMMStats, else a bag."""
    for k, (group, labels) in enumerate(zip(X, y)):
        check_label_sequence(labels, f"y[{k}]", f"session of X[{k}]")
        if len(labels) == 0 or (isinstance(group, (list, tuple)) and len(group) == 0):
            raise ValueError(
                f"X[{k}] / y[{k}]: class group {k} has no session; every class needs at "
                "least one session"
            )
        if isinstance(group, (list, tuple)):
            check_lengths(len(group), len(labels))
    flat_labels = [label for labels in y for label in list(labels)]
    codes, classes = encode_labels(flat_labels)
    counts = np.bincount(codes, minlength=len(classes))
    edges = np.cumsum([0] + [len(labels) for labels in y])
    code_groups = [codes[a:b] for a, b in zip(edges[:-1], edges[1:])]
    if all(isinstance(g, (list, tuple)) and not any(is_delayed(s) for s in g) for g in X):
        flat = [s for group in X for s in group]
        return in_memory(flat, codes, classes, shape, threads, step)
    return TrainingSet(_delayed_bag(list(X), code_groups), classes, counts)


def prepare_bag(X, y) -> TrainingSet:
    """The pairs of a bag (``fit`` has it computed once: :mod:`emkit._backend._cache`)."""
    if y is None:
        labels = X.map(_label_of).compute()
        codes, classes = encode_labels(labels)
        index = {c: i for i, c in enumerate(classes)}
        rows = X.map(_encode_pair, index)
    else:
        y = label_list(y)
        codes, classes = encode_labels(y)
        lengths = X.map_partitions(_partition_length).compute()
        check_lengths(int(np.sum(lengths)), len(codes))
        edges = np.cumsum([0] + list(lengths))
        rows = bag_from_parts(pair_up, [(codes[a:b], part) for part, a, b
                                        in zip(X.to_delayed(), edges[:-1], edges[1:])])
    if len(codes) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    return TrainingSet(rows, classes, np.bincount(codes, minlength=len(classes)))


def stack_partition(pairs, shape, n_classes, step, first: int = 0, partition: int | None = None):
    """A partition kept on a worker, stacked once as an in-memory training set is (one ``F``
    of which the blocks are views, the class totals summed along, buffers kept between passes):
    a list holding that :class:`TrainingSet`.  ``first``: the index of its first item in the
    whole bag (errors name ``X[first + i]``); or ``partition``, its number in a bag whose
    partitions' lengths are not known (errors name item ``i`` of partition ``partition``)."""
    pairs = pairs if isinstance(pairs, list) else list(pairs)
    if not pairs:
        return []
    codes = pair_codes(pairs, n_classes, first=first, partition=partition)
    stats = [pair[1] for pair in pairs]
    return [in_memory(stats, codes, np.arange(n_classes), shape, 1, step, first=first,
                      partition=partition)]


def _pair_and_stack(part, codes, first, shape, n_classes, step):
    return stack_partition(pair_up(codes, part), shape, n_classes, step, first)


def _encode_and_stack(part, first, index, shape, n_classes, step):
    return stack_partition([_encode_pair(pair, index) for pair in part], shape, n_classes, step,
                           first)


def spilled_blocks(source, codes, first, shape, n_classes, step):
    """The blocks of a spilled partition (class indices ``codes``, its first item the bag's item
    ``first``), one ``[SessionBlock]`` at a time: those of :func:`stack_partition` (sorted by
    class, the same rows, the same numbers).  Spilled statistics (``source`` a
    :class:`~emkit._backend._spill_files.SpilledRows`) are checked as
    :meth:`GMMStats.stack` checks them, a block of the files at a time, then each block's ``n``
    and ``F`` are read alone from the files: a worker holds one block, never the partition.
    (Other items, read whole: stacked whole, then written block by block.)"""
    if not hasattr(source, "arrays") or source.labelled:  # (pairs with y: refused by stacking)
        yield from _blocks_of(stack_partition(pair_up(codes, source), shape, n_classes, step,
                                              first))
        return
    _check_partition_length(len(source), len(codes))
    start = first
    for items in source.blocks():
        GMMStats.stack(items, name="X", shape=shape, offset=start)
        start += len(items)
        del items
    order = np.argsort(codes, kind="stable")
    for rows in block_slices(len(codes), step):
        n, F = source.arrays(order[rows])
        yield [SessionBlock.from_arrays(codes[order[rows]], n, F.reshape(len(n), -1))]
        del n, F


def _blocks_of(training_sets):
    for training_set in training_sets:
        for block in training_set.rows:
            yield [block]


def _encode_and_stream(source, first, index, shape, n_classes, step):
    """The blocks of a spilled partition of (label, GMMStats) pairs, one ``[SessionBlock]`` at a
    time: with its statistics spilled as rows (``source`` a labelled
    :class:`~emkit._backend._spill_files.SpilledRows`), its labels are read and encoded, and
    the blocks are those of :func:`spilled_blocks` (a worker holds one block); other items
    (pairs pickled whole) are stacked whole, as :func:`_encode_and_stack` does."""
    if getattr(source, "labelled", False):
        codes = np.array([index[label] for label in source.labels()], dtype=np.int64)
        yield from spilled_blocks(source.statistics(), codes, first, shape, n_classes, step)
        return
    yield from _blocks_of(_encode_and_stack(source, first, index, shape, n_classes, step))


def stacked_on_workers(X, y, shape, step) -> TrainingSet:
    """The training set of a bag that ``fit`` keeps, on the workers or spilled to their disks
    (:mod:`emkit._backend._cache`): each partition paired with its class indices and stacked
    once, there, by one task, into a :class:`TrainingSet` as in memory
    (:func:`stack_partition`); a spilled one is written again as its blocks, read from the
    spilled statistics one at a time (:func:`spilled_blocks`), and every pass reads them one at
    a time."""
    shape = tuple(shape)
    lengths = partition_lengths(X)
    if lengths is None:
        lengths = X.map_partitions(_partition_length).compute()
    edges = np.cumsum([0] + list(lengths))  # each partition told where it starts in the bag
    if y is None:
        labels = X.map(_label_of).compute()
        codes, classes = encode_labels(labels)
        index = {c: i for i, c in enumerate(classes)}
        rows = prepared_on_workers(_encode_and_stack, X, index, shape, len(classes), step,
                                   part_args=[(int(a),) for a in edges[:-1]],
                                   streamed=_encode_and_stream)
    else:
        y = label_list(y)
        codes, classes = encode_labels(y)
        check_lengths(int(edges[-1]), len(codes))
        rows = prepared_on_workers(_pair_and_stack, X, shape, len(classes), step,
                                   part_args=[(codes[a:b], int(a))
                                              for a, b in zip(edges[:-1], edges[1:])],
                                   streamed=spilled_blocks)
    if len(codes) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    return TrainingSet(rows, classes, np.bincount(codes, minlength=len(classes)))
