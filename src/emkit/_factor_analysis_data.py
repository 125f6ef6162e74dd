"""Training data of ISV/JFA: labels, session blocks, additive accumulators, chunk functions.

A training set is a sequence of sessions, each a :class:`GMMStats` with a class label.  Labels of
any hashable type are mapped to class indices ``0..K-1`` in sorted order (first-appearance order
when they cannot be sorted).  Sessions travel as ``(class index, GMMStats)`` pairs: a list in
memory, a persisted dask bag otherwise.  The chunk functions stack a bounded block of sessions at
a time (about 16 MB) and return small additive accumulators, summed by
:func:`emkit._backend.map_reduce`; working memory does not grow with the number of sessions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._backend import is_dask_collection, n_threads
from ._kernels import factor_analysis as kfa
from .stats import GMMStats

#: Elements of the (sessions, C*D) blocks (8 MB of float64: two products over a block hit the cache).
BLOCK_ELEMENTS = 1_000_000


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
    if not np.isfinite(rows).all():
        raise ValueError(f"{name} holds statistics with NaN or infinity")


def stack_block(pairs, shape, name: str = "X"):
    """``(codes (B,), n (B, C), F (B, C*D))`` float64 of a list of (code, GMMStats) pairs."""
    C, D = shape
    codes = np.empty(len(pairs), dtype=np.int64)
    n = np.empty((len(pairs), C))
    F = np.empty((len(pairs), C * D))
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(
                f"{name} must hold (label, GMMStats) pairs; item {i} is a {type(pair).__name__}"
            )
        codes[i] = pair[0]
        stats = check_stats(pair[1], i, shape, name)
        n[i] = stats.n
        F[i] = np.reshape(stats.sum_px, -1)
    return codes, n, F


def blocks(piece, shape):
    """Blocks of at most ``block_size`` sessions of a list of (code, GMMStats) pairs, stacked."""
    pairs = piece if isinstance(piece, list) else list(piece)
    step = block_size(*shape)
    for start in range(0, len(pairs), step):
        yield stack_block(pairs[start : start + step], shape)


def block_size(C: int, D: int) -> int:
    return max(1, BLOCK_ELEMENTS // (C * D))


@dataclass
class TrainingSet:
    """Sessions ready for EM: ``rows`` is a list (or a dask bag) of ``(class index, GMMStats)``."""

    rows: object
    classes: np.ndarray
    counts: np.ndarray  # sessions per class (K,)

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


def _block_totals(codes, n, F, n_classes) -> ClassTotals:
    if len(codes) and (codes.min() < 0 or codes.max() >= n_classes):
        raise ValueError(f"class index {codes.max()} out of range for {n_classes} classes")
    check_finite_rows(n, "X")
    check_finite_rows(F, "X")
    return ClassTotals(
        kfa.group_sum(codes, n, n_classes),
        kfa.group_sum(codes, F, n_classes),
        np.bincount(codes, minlength=n_classes),
    )


def class_totals_chunk(piece, shape, n_classes) -> ClassTotals:
    C, D = shape
    total = ClassTotals(
        np.zeros((n_classes, C)), np.zeros((n_classes, C * D)), np.zeros(n_classes, dtype=np.int64)
    )
    for codes, n, F in blocks(piece, shape):
        total = total + _block_totals(codes, n, F, n_classes)
    return total


@dataclass
class SessionParams:
    """What a pass over sessions needs: the posterior of x_h given the offsets ``m + V y_k``.

    ``W_mean[c] = sum_d m_cd U_cd / var_cd`` (C, r_U) and, with y, ``VtU[c] = V_c^T Sigma_c^-1 U_c``
    (C, r_V, r_U) let ``U^T Sigma^-1 (F_h - N_h (m + V y_k))`` be computed from F_h directly.
    """

    shape: tuple
    U_over_var: np.ndarray  # (CD, r_U)
    uprod: np.ndarray  # (C, r_U, r_U)
    W_mean: np.ndarray  # (C, r_U)
    n_classes: int
    latent_y: np.ndarray | None = None  # (K, r_V)
    VtU: np.ndarray | None = None  # (C, r_V, r_U)
    accumulate: bool = True  # A1, A2F, g (and H with y)
    class_sums: bool = False  # G
    totals: bool = False  # the ClassTotals too (ISV's first pass)


@dataclass
class SessionAccumulator:
    """Sums over sessions h of class k(h), with x_h the posterior mean and L_h its covariance.

    ``A1[c] = sum N_hc (L_h + x_h x_h^T)`` (C, r, r); ``A2F = sum F_h x_h^T`` (CD, r);
    ``g[c] = sum N_hc x_h`` (C, r); ``H[c] = sum N_hc y_k x_h^T`` (C, r_V, r) (JFA);
    ``G[k, c] = sum_{h in k} N_hc x_h`` (K, C, r).  The U accumulator of the reference,
    ``sum (F_h - N_h (m + o_k)) x_h^T``, is ``A2F`` minus offset terms built from g, H or G.
    ``totals`` are the :class:`ClassTotals` when requested.
    """

    A1: np.ndarray | None
    A2F: np.ndarray | None
    g: np.ndarray | None
    H: np.ndarray | None
    G: np.ndarray | None
    totals: ClassTotals | None = None

    def __add__(self, other: "SessionAccumulator") -> "SessionAccumulator":
        mine = (self.A1, self.A2F, self.g, self.H, self.G, self.totals)
        theirs = (other.A1, other.A2F, other.g, other.H, other.G, other.totals)
        return SessionAccumulator(*(_add_optional(a, b) for a, b in zip(mine, theirs)))


def session_chunk(piece, p: SessionParams) -> SessionAccumulator:
    C, D = p.shape
    r = p.U_over_var.shape[1]
    with_y = p.latent_y is not None
    acc = SessionAccumulator(
        A1=np.zeros((C, r, r)) if p.accumulate else None,
        A2F=np.zeros((C * D, r)) if p.accumulate else None,
        g=np.zeros((C, r)) if p.accumulate else None,
        H=np.zeros((C, p.latent_y.shape[1], r)) if p.accumulate and with_y else None,
        G=np.zeros((p.n_classes, C, r)) if p.class_sums else None,
    )
    for codes, n, F in blocks(piece, p.shape):
        if p.totals:
            block = _block_totals(codes, n, F, p.n_classes)
            acc.totals = block if acc.totals is None else acc.totals + block
        # U^T Sigma^-1 (F_h - N_h m - N_h V y_k) without forming the (B, CD) centred statistics
        b = F @ p.U_over_var - n @ p.W_mean
        if with_y:
            y = p.latent_y[codes]
            nVtU = (n @ p.VtU.reshape(C, -1)).reshape(len(codes), y.shape[1], r)
            b -= np.matmul(y[:, None, :], nVtU)[:, 0, :]
        cov = kfa.posterior_covariance(n, p.uprod)
        x = np.matmul(cov, b[:, :, None])[:, :, 0]
        if p.accumulate:
            second = cov + x[:, :, None] * x[:, None, :]
            acc.A1 += (n.T @ second.reshape(len(codes), r * r)).reshape(C, r, r)
            acc.A2F += F.T @ x
            acc.g += n.T @ x
            if with_y:
                yx = (y[:, :, None] * x[:, None, :]).reshape(len(codes), -1)
                acc.H += (n.T @ yx).reshape(acc.H.shape)
        if p.class_sums:
            acc.G += kfa.class_weighted_sums(codes, n, x, p.n_classes)
    return acc


# ---------------------------------------------------------------------------------------------
# inputs -> TrainingSet
# ---------------------------------------------------------------------------------------------


def is_delayed(obj) -> bool:
    """True for a ``dask.delayed`` object (checked without importing dask for other objects)."""
    if not is_dask_collection(obj):
        return False
    from dask.delayed import Delayed

    return isinstance(obj, Delayed)


def _is_bag(obj) -> bool:
    if not is_dask_collection(obj):
        return False
    from dask.bag import Bag

    return isinstance(obj, Bag)


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
    """A persisted bag with one partition per group of delayed statistics."""
    import dask
    import dask.bag as db

    parts = [
        dask.delayed(pair_up, pure=True)(codes, list(group) if isinstance(group, list) else group)
        for group, codes in zip(groups, code_groups)
    ]
    return db.from_delayed(parts).persist()


def _split(items, n_parts):
    edges = np.linspace(0, len(items), n_parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def prepare_training_set(X, y, shape) -> TrainingSet:
    """Validate ``X``/``y`` of ``fit`` and turn them into a :class:`TrainingSet` (see module doc)."""
    if _is_bag(X):
        return _prepare_bag(X, y)
    if isinstance(X, np.ndarray) and X.dtype == object:
        X = list(X)
    if not isinstance(X, (list, tuple)):
        raise TypeError(
            "X must be a list of GMMStats (one per session), a list of dask.delayed GMMStats, or a dask "
            f"bag of GMMStats (with y) or of (label, GMMStats) pairs (y=None); got {type(X).__name__}"
        )
    if len(X) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    y = _label_list(y)
    if _is_nested(X, y):
        return _prepare_nested(X, y, shape)
    _check_lengths(len(X), len(y))
    codes, classes = encode_labels(y)
    counts = np.bincount(codes, minlength=len(classes))
    if any(is_delayed(s) for s in X):
        n_parts = min(len(X), max(n_threads(), math.ceil(len(X) / 256)))
        slices = _split(X, n_parts)
        rows = _delayed_bag([list(X[s]) for s in slices], [codes[s] for s in slices])
        return TrainingSet(rows, classes, counts)
    return TrainingSet(_pairs_in_memory(X, codes, shape), classes, counts)


def _pairs_in_memory(X, codes, shape, name="X"):
    """(code, GMMStats) pairs sorted by class (stable): blocks then hold runs of one class."""
    for i, stats in enumerate(X):
        check_stats(stats, i, shape, name)
    order = np.argsort(codes, kind="stable")
    return pair_up(codes[order], [X[i] for i in order])


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


def _prepare_nested(X, y, shape) -> TrainingSet:
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
        return TrainingSet(_pairs_in_memory(flat, codes, shape), classes, counts)
    return TrainingSet(_delayed_bag(list(X), code_groups), classes, counts)


def _prepare_bag(X, y) -> TrainingSet:
    import dask

    X = X.persist()
    if y is None:
        labels = X.map(_label_of).compute()
        codes, classes = encode_labels(labels)
        index = {c: i for i, c in enumerate(classes)}
        rows = X.map(_encode_pair, index).persist()
    else:
        y = _label_list(y)
        codes, classes = encode_labels(y)
        lengths = X.map_partitions(_partition_length).compute()
        _check_lengths(int(np.sum(lengths)), len(codes))
        edges = np.cumsum([0] + list(lengths))
        import dask.bag as db

        parts = [
            dask.delayed(pair_up, pure=True)(codes[a:b], part)
            for part, a, b in zip(X.to_delayed(), edges[:-1], edges[1:])
        ]
        rows = db.from_delayed(parts).persist()
    if len(codes) == 0:
        raise ValueError("X is empty: expected the statistics of at least one session")
    return TrainingSet(rows, classes, np.bincount(codes, minlength=len(classes)))
