"""Training data of ISV/JFA: labels, session blocks, additive accumulators, per-block E-steps.

A training set is a sequence of sessions, each a :class:`GMMStats` with a class label.  Labels of
any hashable type are mapped to class indices ``0..K-1`` in sorted order (first-appearance order
when they cannot be sorted).

In memory, the sessions are validated and stacked once per ``fit`` into :class:`SessionBlock`
(sorted by class, at most ``BLOCK_ELEMENTS`` floats of first-order statistics each, on a few
threads), and the class totals are summed along; each E-step then runs :func:`block_terms` on the
blocks in parallel and adds their terms in block order (see ``FactorAnalysisBase._session_pass``).
The stacked copy is as large as the statistics themselves (C*D floats per session); the working
memory of a pass is a few blocks.  Dask inputs travel as ``(class index, GMMStats)`` pairs in a
persisted bag: every pass stacks each partition in blocks (:func:`session_chunk`) and sums small
additive accumulators through :func:`emkit._backend.map_reduce`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import bag_from_parts, is_bag, is_dask_collection, is_delayed, n_threads, thread_map
from ._kernels import factor_analysis as kfa
from .stats import GMMStats, as_stats_sequence

#: Elements of the (sessions, C*D) blocks (8 MB of float64: the second product over a block finds
#: it in the cache).
BLOCK_ELEMENTS = 1_000_000


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element-wise: tuples must stay scalars
        out[i] = v
    return out


def encode_labels(y, name: str = "y"):
    """``(codes (S,) int64, classes (K,))`` with ``classes[codes] == y``."""
    if is_dask_collection(y):
        y = y.compute()
    if isinstance(y, np.ndarray) and y.dtype != object:
        if y.ndim != 1:
            if y.ndim == 2 and 1 in y.shape:
                y = y.ravel()
            else:
                raise ValueError(
                    f"{name} must be a 1-D sequence of labels; got an array of shape {y.shape}"
                )
        classes, codes = np.unique(y, return_inverse=True)
        return codes.astype(np.int64).ravel(), classes
    if isinstance(y, (str, bytes)) or not hasattr(y, "__iter__"):
        raise TypeError(f"{name} must be a sequence of labels; got {type(y).__name__}")
    labels = list(y)
    try:
        unique = set(labels)
    except TypeError as exc:
        raise TypeError(f"{name} must contain hashable labels; {exc}") from None
    try:
        classes = sorted(unique)
    except TypeError:  # e.g. mixed types: keep the order of first appearance
        classes = list(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(classes)}
    codes = np.fromiter((index[v] for v in labels), dtype=np.int64, count=len(labels))
    return codes, _object_array(classes)


def check_class_indices(y, n_classes: int, name: str = "y") -> np.ndarray:
    """Labels of the public step methods: integer class indices in ``[0, n_classes)``."""
    codes = np.asarray(y)
    if codes.ndim != 1 or (codes.size and codes.dtype.kind not in "iu"):
        raise ValueError(
            f"{name} must hold integer class indices 0..{n_classes - 1} (the rows of n_acc/f_acc); "
            f"got {codes.dtype} values of shape {codes.shape}"
        )
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {n_classes}); got values in "
            f"[{codes.min()}, {codes.max()}]"
        )
    return codes.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# sessions in blocks
# ---------------------------------------------------------------------------------------------


def check_stats(stats, i, shape, name: str = "X") -> GMMStats:
    if not isinstance(stats, GMMStats):
        raise TypeError(f"{name}[{i}] must be a GMMStats; got {type(stats).__name__}")
    if stats.shape != shape:
        raise ValueError(
            f"{name}[{i}] has shape (n_gaussians, n_features) = {stats.shape}; the UBM has {shape}"
        )
    return stats


def check_finite_rows(rows, name):
    # a finite sum (one pass, no temporary) proves every entry finite; an infinite one may also
    # be an overflow of finite entries, so look at them
    if not np.isfinite(rows.sum()) and not np.isfinite(rows).all():
        raise ValueError(f"{name} holds statistics with NaN or infinity")


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

    @property
    def few_classes(self) -> bool:
        """Per-class sums as a dense product (:func:`~emkit._kernels.factor_analysis.slot_class_sums`)
        cost C*B*J*r: cheaper than the sparse one (and free of the GIL) while J <= B / 4."""
        return 4 * len(self.present) <= len(self.codes)


def stack_block(pairs, shape, n_classes, name: str = "X", checked: bool = False) -> SessionBlock:
    """A :class:`SessionBlock` of a list of (class index, GMMStats) pairs (``checked``: the pairs
    and the GMMStats' types and shapes were validated already)."""
    if not checked:
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    f"{name} must hold (label, GMMStats) pairs; item {i} is a {type(pair).__name__}"
                )
            check_stats(pair[1], i, shape, name)
    B, (C, D) = len(pairs), shape
    codes = np.fromiter((pair[0] for pair in pairs), dtype=np.int64, count=B)
    if B and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(f"class index {codes.max()} out of range for {n_classes} classes")
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    n = np.array([pairs[i][1].n for i in order], dtype=np.float64).reshape(B, -1)
    F = np.array([pairs[i][1].sum_px for i in order], dtype=np.float64).reshape(B, -1)
    if n.shape != (B, C) or F.shape != (B, C * D):
        raise ValueError(f"{name} holds statistics whose n or sum_px do not have the shape {shape}")
    check_finite_rows(n, name)
    check_finite_rows(F, name)
    present, local = np.unique(codes, return_inverse=True)
    return SessionBlock(codes, n, F, present, local, kfa.class_weights(local, n, len(present)))


def blocks(piece, shape, n_classes):
    """The :class:`SessionBlock` of a piece of the training set: its items when they are blocks
    already (in-memory training sets are stacked once), else blocks of at most
    :func:`block_size` (class index, GMMStats) pairs stacked now (a dask partition)."""
    items = piece if isinstance(piece, list) else list(piece)
    if items and isinstance(items[0], SessionBlock):
        yield from items
        return
    step = block_size(*shape)
    for start in range(0, len(items), step):
        yield stack_block(items[start : start + step], shape, n_classes)


def block_size(C: int, D: int) -> int:
    return max(1, BLOCK_ELEMENTS // (C * D))


@dataclass
class TrainingSet:
    """Sessions ready for EM.

    ``rows`` is a list of :class:`SessionBlock` (in memory: stacked and validated once, sorted by
    class, with the :class:`ClassTotals` summed along) or a dask bag of ``(class index, GMMStats)``
    pairs (stacked per partition and pass).
    """

    rows: object
    classes: np.ndarray
    counts: np.ndarray  # sessions per class (K,)
    totals: "ClassTotals | None" = None  # in memory: summed while stacking

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# ---------------------------------------------------------------------------------------------
# accumulators and chunk functions (top-level so that they pickle for dask's processes)
# ---------------------------------------------------------------------------------------------


def _add_optional(a, b):
    return None if a is None else a + b


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
        return cls(np.zeros((n_classes, C)), np.zeros((n_classes, CD)), np.zeros(n_classes, np.int64))

    def add_block(self, block: SessionBlock, sums=None) -> "ClassTotals":
        """Add the class sums of a block (``sums`` from :func:`_block_sums`), in place."""
        n, F, counts = _block_sums(block) if sums is None else sums
        self.n[block.present] += n
        self.F[block.present] += F
        self.counts[block.present] += counts
        return self


def _block_sums(block: SessionBlock):
    """Sums of ``n`` (J, C) and ``F`` (J, CD) and session counts (J,) per class of the block."""
    J = len(block.present)
    return (
        kfa.group_sum(block.local, block.n, J),
        kfa.group_sum(block.local, block.F, J),
        np.bincount(block.local, minlength=J),
    )


def _add_totals(totals: ClassTotals | None, block: SessionBlock, n_classes) -> ClassTotals:
    """``totals`` plus the class sums of ``block`` (updated in place: a chunk's own accumulator)."""
    if totals is None:
        totals = ClassTotals.zeros(n_classes, block.n.shape[1], block.F.shape[1])
    return totals.add_block(block)


def class_totals_chunk(piece, shape, n_classes) -> ClassTotals:
    totals = None
    for block in blocks(piece, shape, n_classes):
        totals = _add_totals(totals, block, n_classes)
    if totals is None:
        C, D = shape
        totals = ClassTotals.zeros(n_classes, C, C * D)
    return totals


@dataclass
class SessionParams:
    """What a pass over sessions needs: the posterior of x_h given per-class offsets ``o_k``.

    ``W_mean[c] = sum_d m_cd U_cd / var_cd`` (C, r_U) and ``offset_proj[k, c] = U_c^T Sigma_c^-1
    o_kc`` (K, C, r_U) (JFA: ``o_k = V y_k``) let ``U^T Sigma^-1 (F_h - N_h (m + o_k))`` be
    computed from F_h directly.
    """

    shape: tuple
    U_over_var: np.ndarray  # (CD, r_U)
    uprod: np.ndarray  # (C, r_U, r_U)
    W_mean: np.ndarray  # (C, r_U)
    n_classes: int
    offset_proj: np.ndarray | None = None  # (K, C, r_U)
    accumulate: bool = True  # A1 and A2F (else only G)
    totals: bool = False  # the ClassTotals too (ISV's first pass)


@dataclass
class SessionAccumulator:
    """Sums over sessions h of class k(h), with x_h the posterior mean and L_h its covariance.

    ``A1[c] = sum N_hc (L_h + x_h x_h^T)`` (C, r, r); ``A2F = sum F_h x_h^T`` (CD, r);
    ``G[k, c] = sum_{h in k} N_hc x_h`` (K, C, r).  The U accumulator of the reference,
    ``sum (F_h - N_h (m + o_k)) x_h^T``, is ``A2F`` minus terms built from G (see
    ``FactorAnalysisBase._U_accumulator``).  ``totals`` are the :class:`ClassTotals` when requested.
    """

    A1: np.ndarray | None
    A2F: np.ndarray | None
    G: np.ndarray
    totals: ClassTotals | None = None

    @classmethod
    def zeros(cls, p: SessionParams) -> "SessionAccumulator":
        C, D = p.shape
        r = p.U_over_var.shape[1]
        return cls(
            A1=np.zeros((C, r, r)) if p.accumulate else None,
            A2F=np.zeros((C * D, r)) if p.accumulate else None,
            G=np.zeros((p.n_classes, C, r)),
        )

    def add_block(self, block: SessionBlock, terms) -> "SessionAccumulator":
        """Add the :func:`block_terms` of a block, in place."""
        A1, A2F, G = terms
        if self.A1 is not None:
            self.A1 += A1
            self.A2F += A2F
        self.G[block.present] += G
        return self

    def __add__(self, other: "SessionAccumulator") -> "SessionAccumulator":
        mine = (self.A1, self.A2F, self.G, self.totals)
        theirs = (other.A1, other.A2F, other.G, other.totals)
        return SessionAccumulator(*(_add_optional(a, b) for a, b in zip(mine, theirs)))


def block_terms(block: SessionBlock, p: SessionParams):
    """The E-step of one block: ``(A1, A2F, G)`` of its sessions (see :class:`SessionAccumulator`;
    A1 and A2F are None unless ``p.accumulate``; G (J, C, r) for the classes of the block)."""
    n, F = block.n, block.F
    # U^T Sigma^-1 (F_h - N_h m - N_h o_k) without forming the (B, CD) centred statistics
    b = F @ p.U_over_var - n @ p.W_mean
    if p.offset_proj is not None:
        b -= kfa.class_offset_terms(block.weights, p.offset_proj[block.present])
    A1 = A2F = None
    if p.accumulate:
        cov = kfa.posterior_covariance(n, p.uprod)
        x = np.matmul(cov, b[:, :, None])[:, :, 0]
        A1 = kfa.second_moments(n, cov, x)
        A2F = F.T @ x
    else:
        x = kfa.spd_solve(kfa.posterior_precision(n, p.uprod), b[:, :, None])[:, :, 0]
    J = len(block.present)
    if block.few_classes:
        G = kfa.slot_class_sums(block.local, n, x, J)
    else:
        G = kfa.class_weighted_sums(block.local, n, x, J, block.weights)
    return A1, A2F, G


def session_chunk(piece, p: SessionParams) -> SessionAccumulator:
    """The E-step of a piece of the training set (a dask partition, or a list of blocks)."""
    acc = SessionAccumulator.zeros(p)
    for block in blocks(piece, p.shape, p.n_classes):
        if p.totals:
            acc.totals = _add_totals(acc.totals, block, p.n_classes)
        acc.add_block(block, block_terms(block, p))
    return acc


# ---------------------------------------------------------------------------------------------
# inputs -> TrainingSet
# ---------------------------------------------------------------------------------------------


def pair_up(codes, stats):
    """A bag partition: ``[(code, GMMStats), ...]`` (top-level so that it pickles)."""
    stats = list(stats)
    if len(stats) != len(codes):
        raise ValueError(
            f"X and y have inconsistent numbers of sessions in a partition: "
            f"{len(stats)} statistics, {len(codes)} labels"
        )
    return [(int(c), s) for c, s in zip(codes, stats)]


def _encode_pair(pair, index):
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError(
            f"with y=None, X must be a bag of (label, GMMStats) pairs; got {type(pair).__name__}"
        )
    return (index[pair[0]], pair[1])


def _label_of(pair):
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError(
            f"with y=None, X must be a bag of (label, GMMStats) pairs; got {type(pair).__name__}"
        )
    return pair[0]


def _partition_length(part):
    return [len(list(part))]


def _check_lengths(n_x, n_y):
    if n_x != n_y:
        raise ValueError(
            f"X and y have inconsistent numbers of sessions: len(X) = {n_x}, len(y) = {n_y}"
        )


def _label_list(y, name="y"):
    if is_dask_collection(y):
        y = y.compute()
    if y is None:
        raise ValueError(f"{name} is required: one class label per session")
    return y


def _delayed_bag(groups, code_groups):
    """A bag with one partition of (code, GMMStats) pairs per group of delayed statistics."""
    return bag_from_parts(pair_up, [(codes, list(group) if isinstance(group, list) else group)
                                    for group, codes in zip(groups, code_groups)])


def _split(items, n_parts):
    edges = np.linspace(0, len(items), n_parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def prepare_training_set(X, y, shape, threads: int = 1) -> TrainingSet:
    """Validate ``X``/``y`` of ``fit`` and turn them into a :class:`TrainingSet` (see module doc).

    In memory, the number of blocks is a multiple of ``threads`` (balanced passes).
    """
    if is_bag(X):
        return _prepare_bag(X, y)
    X = as_stats_sequence(X)  # numpy object arrays (1-D, or 2-D per class) as lists
    if not isinstance(X, (list, tuple)):
        raise TypeError(
            "X must be a list of GMMStats (one per session), a list of dask.delayed GMMStats, or a dask "
            f"bag of GMMStats (with y) or of (label, GMMStats) pairs (y=None); got {type(X).__name__}"
        )
    if len(X) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    y = _label_list(y)
    if _is_nested(X, y):
        return _prepare_nested(X, y, shape, threads)
    _check_lengths(len(X), len(y))
    codes, classes = encode_labels(y)
    counts = np.bincount(codes, minlength=len(classes))
    if any(is_delayed(s) for s in X):
        n_parts = min(len(X), max(n_threads(), math.ceil(len(X) / 256)))
        slices = _split(X, n_parts)
        rows = _delayed_bag([list(X[s]) for s in slices], [codes[s] for s in slices])
        return TrainingSet(rows, classes, counts)
    return _in_memory(X, codes, classes, shape, threads)


def _in_memory(X, codes, classes, shape, threads, name="X") -> TrainingSet:
    """The sessions stacked once into :class:`SessionBlock` of at most :func:`block_size` sessions
    (an even number of blocks of even sizes), sorted by class (stable), on ``threads`` threads;
    the class totals are summed while the blocks are in cache."""
    for i, stats in enumerate(X):  # here, so that errors name the position in X
        check_stats(stats, i, shape, name)
    K = len(classes)
    order = np.argsort(codes, kind="stable")
    pairs = pair_up(codes[order], [X[i] for i in order])
    n_blocks = 2 * math.ceil(len(pairs) / (2 * block_size(*shape)))  # even: 2 threads balance

    def stack(rows):
        block = stack_block(pairs[rows], shape, K, name, checked=True)
        return block, _block_sums(block)

    stacked = list(thread_map(stack, _split(pairs, n_blocks), threads))
    totals = ClassTotals.zeros(K, shape[0], shape[0] * shape[1])
    for block, sums in stacked:
        totals.add_block(block, sums)
    return TrainingSet(
        [block for block, _ in stacked], classes, np.bincount(codes, minlength=K), totals
    )


def _is_nested(X, y) -> bool:
    """The reference's per-class form: X[k] a list (or delayed list) of stats, y[k] their labels."""
    first = y[0] if len(y) else None
    return (
        isinstance(y, (list, tuple))
        and len(y) == len(X)
        and isinstance(first, (list, np.ndarray))
        and np.ndim(first) == 1
        and (isinstance(X[0], (list, tuple)) or is_delayed(X[0]))
    )


def _prepare_nested(X, y, shape, threads) -> TrainingSet:
    for k, (group, labels) in enumerate(zip(X, y)):
        if len(labels) == 0 or (isinstance(group, (list, tuple)) and len(group) == 0):
            raise ValueError(
                f"X[{k}] / y[{k}]: class group {k} has no session; every class needs at "
                "least one session"
            )
        if isinstance(group, (list, tuple)):
            _check_lengths(len(group), len(labels))
    flat_labels = [label for labels in y for label in list(labels)]
    codes, classes = encode_labels(flat_labels)
    counts = np.bincount(codes, minlength=len(classes))
    edges = np.cumsum([0] + [len(labels) for labels in y])
    code_groups = [codes[a:b] for a, b in zip(edges[:-1], edges[1:])]
    if all(isinstance(g, (list, tuple)) and not any(is_delayed(s) for s in g) for g in X):
        flat = [s for group in X for s in group]
        return _in_memory(flat, codes, classes, shape, threads)
    return TrainingSet(_delayed_bag(list(X), code_groups), classes, counts)


def _prepare_bag(X, y) -> TrainingSet:
    """The bag is not persisted: each pass recomputes it (persist it first if it fits in memory)."""
    if y is None:
        labels = X.map(_label_of).compute()
        codes, classes = encode_labels(labels)
        index = {c: i for i, c in enumerate(classes)}
        rows = X.map(_encode_pair, index)
    else:
        y = _label_list(y)
        codes, classes = encode_labels(y)
        lengths = X.map_partitions(_partition_length).compute()
        _check_lengths(int(np.sum(lengths)), len(codes))
        edges = np.cumsum([0] + list(lengths))
        rows = bag_from_parts(pair_up, [(codes[a:b], part) for part, a, b
                                        in zip(X.to_delayed(), edges[:-1], edges[1:])])
    if len(codes) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    return TrainingSet(rows, classes, np.bincount(codes, minlength=len(classes)))
