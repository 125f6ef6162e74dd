"""Sessions of an ISV/JFA training set stacked in blocks, and their per-class totals.

In memory, the sessions are stacked once per ``fit`` by :meth:`GMMStats.stack` (validated there),
sorted by class, and cut into :class:`SessionBlock` views of at most a block size of sessions; the
class totals are summed per block on a few threads.  A dask partition of ``(class index,
GMMStats)`` pairs is stacked the same way (:func:`~._dask.stack_partition`): once, when ``fit``
keeps it on the workers, else at every pass; a spilled one is cut into the same blocks, each
read alone from the spill files and written to a file of blocks (:func:`~._dask.spilled_blocks`)
that every pass reads a block at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._backend import thread_map
from .._kernels import factor_analysis as kfa
from ..stats import GMMStats, StatsBatch


@dataclass
class SessionBlock:
    """The stacked statistics of a block of sessions, validated and sorted by class.

    ``codes`` (B,) class indices, ``n`` (B, C), ``F`` (B, C*D) float64; ``present`` (J,) the
    classes of the block and ``local`` (B,) each session's position among them; ``weights`` the
    sparse (B, J*C) :func:`~emkit._kernels.factor_analysis.class_weights` of the block (local
    class indices).
    """

    codes: np.ndarray
    n: np.ndarray
    F: np.ndarray
    present: np.ndarray
    local: np.ndarray
    weights: object

    @classmethod
    def of(cls, codes: np.ndarray, batch: StatsBatch) -> "SessionBlock":
        """The block of the sessions ``batch`` (sorted by class) with class indices ``codes``."""
        return cls.from_arrays(codes, batch.n, batch.supervectors)

    @classmethod
    def from_arrays(cls, codes: np.ndarray, n: np.ndarray, F: np.ndarray) -> "SessionBlock":
        """The block of the sessions (sorted by class, validated) of statistics ``n`` (B, C) and
        ``F`` (B, C*D) with class indices ``codes`` (B,)."""
        present, local = np.unique(codes, return_inverse=True)
        return cls(codes, n, F, present, local, kfa.class_weights(local, n, len(present)))

    @property
    def few_classes(self) -> bool:
        """Per-class sums as a dense product (:func:`~emkit._kernels.factor_analysis.slot_class_sums`)
        cost C*B*J*r: cheaper than the sparse one (and free of the GIL) while J <= B / 4."""
        return 4 * len(self.present) <= len(self.codes)


def pair_codes(pairs, n_classes, name: str = "X", first: int = 0,
               partition: int | None = None) -> np.ndarray:
    """The class indices of a list of (class index, GMMStats) pairs, checked (errors count the
    items from ``first``, of dask partition ``partition`` when given)."""
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            of = "" if partition is None else f" of partition {partition}"
            raise TypeError(
                f"{name} must hold (label, GMMStats) pairs; item {first + i}{of} is a "
                f"{type(pair).__name__}"
            )
    codes = np.fromiter((pair[0] for pair in pairs), dtype=np.int64, count=len(pairs))
    if len(codes) and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(f"class index {codes.max()} out of range for {n_classes} classes")
    return codes


def stack_block(pairs, shape, n_classes, name: str = "X", first: int = 0,
                partition: int | None = None) -> SessionBlock:
    """A :class:`SessionBlock` of a list of (class index, GMMStats) pairs (of a dask partition:
    errors name item ``first + i`` of partition ``partition``)."""
    codes = pair_codes(pairs, n_classes, name, first=first, partition=partition)
    batch = GMMStats.stack([pair[1] for pair in pairs], name=name, shape=shape, offset=first,
                           partition=partition)
    order = np.argsort(codes, kind="stable")
    return SessionBlock.of(codes[order], batch.take(order))


NO_ITEM = object()  # (no item: None may be one)


def blocks(piece, shape, n_classes, step: int, partition: int | None = None):
    """The :class:`SessionBlock` of a piece of the training set: its items when they are blocks
    already (in-memory training sets are stacked once), the blocks of its items when they are
    training sets (a partition kept on a worker, stacked once), else blocks of at most ``step``
    (class index, GMMStats) pairs stacked now (dask partition number ``partition``)."""
    items = iter(piece)
    first = next(items, NO_ITEM)
    if isinstance(first, SessionBlock):  # (a spilled partition's blocks: read as they come)
        yield first
        del first
        yield from items
        return
    items = [] if first is NO_ITEM else [first, *items]
    if items and isinstance(items[0], TrainingSet):
        for training_set in items:
            yield from training_set.rows
        return
    for start in range(0, len(items), step):
        yield stack_block(items[start : start + step], shape, n_classes, first=start,
                          partition=partition)


@dataclass
class ClassTotals:
    """Per-class sums: ``n`` (K, C), ``F`` (K, C*D), ``counts`` (K,) sessions."""

    n: np.ndarray
    F: np.ndarray
    counts: np.ndarray

    def __add__(self, other: "ClassTotals") -> "ClassTotals":
        return ClassTotals(self.n + other.n, self.F + other.F, self.counts + other.counts)

    @classmethod
    def zeros(cls, n_classes, C, CD) -> "ClassTotals":
        return cls(np.zeros((n_classes, C)), np.zeros((n_classes, CD)),
                   np.zeros(n_classes, np.int64))

    def add_block(self, block: SessionBlock, sums=None) -> "ClassTotals":
        """Add the class sums of a block (``sums`` from :func:`block_sums`), in place."""
        n, F, counts = block_sums(block) if sums is None else sums
        self.n[block.present] += n
        self.F[block.present] += F
        self.counts[block.present] += counts
        return self


def block_sums(block: SessionBlock):
    """Sums of ``n`` (J, C) and ``F`` (J, CD) and session counts (J,) per class of the block."""
    J = len(block.present)
    return (
        kfa.group_sum(block.local, block.n, J),
        kfa.group_sum(block.local, block.F, J),
        np.bincount(block.local, minlength=J),
    )


def add_totals(totals: ClassTotals | None, block: SessionBlock, n_classes) -> ClassTotals:
    """``totals`` plus the class sums of ``block`` (updated in place: a chunk's own accumulator)."""
    if totals is None:
        totals = ClassTotals.zeros(n_classes, block.n.shape[1], block.F.shape[1])
    return totals.add_block(block)


@dataclass
class TrainingSet:
    """Sessions ready for EM.

    ``rows`` is a list of :class:`SessionBlock` (in memory: stacked and validated once, sorted by
    class, with the :class:`ClassTotals` summed along, and ``F`` the first-order statistics of
    all of them, of which the blocks are row slices) or a dask bag of ``(class index, GMMStats)``
    pairs (stacked per partition and pass).
    """

    rows: object
    classes: np.ndarray
    counts: np.ndarray  # sessions per class (K,)
    totals: "ClassTotals | None" = None  # in memory: summed while stacking
    F: "np.ndarray | None" = None  # in memory: (S, CD), the rows of the blocks in order
    scratch: dict = field(default_factory=dict, repr=False)  # passes' buffers, kept per fit

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __getstate__(self):
        """Pickled (a training set spilled to disk, or moved between dask workers) without the
        passes' buffers, and with ``F`` once: the blocks' ``F`` are rebuilt as its row slices
        (pickled as they are, each view would be a copy of its rows)."""
        state = dict(self.__dict__, scratch={})
        if _blocks_are_rows_of(self.rows, self.F):
            state["rows"] = [SessionBlock(b.codes, b.n, None, b.present, b.local, b.weights)
                             for b in self.rows]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        start = 0
        for block in self.rows if isinstance(self.rows, list) else ():
            if block.F is None:
                block.F = self.F[start : start + len(block.codes)]
            start += len(block.codes)


def _blocks_are_rows_of(rows, F) -> bool:
    """True when ``rows`` is a list of blocks whose ``F`` are the consecutive row slices of ``F``."""
    if not isinstance(rows, list) or F is None or not F.flags.c_contiguous:
        return False
    address, start = F.__array_interface__["data"][0], 0
    for block in rows:
        if (block.F.shape != (len(block.codes), F.shape[1]) or block.F.strides != F.strides
                or block.F.__array_interface__["data"][0] != address + start * F.strides[0]):
            return False
        start += len(block.codes)
    return start == len(F)


def split(n_items: int, n_parts: int) -> list:
    """``n_parts`` slices of about equal sizes covering ``range(n_items)`` (empty ones dropped)."""
    edges = np.linspace(0, n_items, n_parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def block_slices(n_sessions: int, step: int) -> list:
    """The blocks of :func:`in_memory`: an even number (2 threads balance) of slices of the
    sessions sorted by class, of at most ``step`` sessions each."""
    return split(n_sessions, 2 * -(-n_sessions // (2 * step)))


def in_memory(X, codes, classes, shape, threads, step, name="X", first: int = 0,
              partition: int | None = None) -> TrainingSet:
    """The sessions ``X`` stacked once (:meth:`GMMStats.stack`: errors name ``X[first + i]``, or
    the item of dask partition ``partition``),
    sorted by class (stable) and cut into an even number of :class:`SessionBlock` views of at most
    ``step`` sessions; the class totals are summed per block on ``threads`` threads."""
    batch = GMMStats.stack(X, name=name, shape=shape, offset=first, partition=partition)
    order = np.argsort(codes, kind="stable")
    if (order != np.arange(len(order))).any():  # grouped by class already: no copy
        batch, codes = batch.take(order), codes[order]
    K = len(classes)

    def stack(rows):
        block = SessionBlock.of(codes[rows], batch.take(rows))
        return block, block_sums(block)

    stacked = list(thread_map(stack, block_slices(len(codes), step), threads))
    totals = ClassTotals.zeros(K, shape[0], shape[0] * shape[1])
    for block, sums in stacked:
        totals.add_block(block, sums)
    return TrainingSet(
        [block for block, _ in stacked], classes, np.bincount(codes, minlength=K), totals,
        batch.supervectors,
    )
