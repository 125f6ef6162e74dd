"""The E-step of ISV/JFA training over blocks of sessions, as additive accumulators.

:func:`block_terms` is the posterior of the session factors x_h of one :class:`SessionBlock` and
the sums the U update needs; :func:`session_chunk` and :func:`class_totals_chunk` run over a piece
of the training set (a list of blocks, or a dask partition of ``(class index, GMMStats)`` pairs).
They are top-level functions of plain arguments, so that they pickle for dask's processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._kernels import factor_analysis as kfa
from .._kernels.packed import gemm_add
from .._kernels.packed import scratch as _scratch
from ._blocks import ClassTotals, SessionBlock, add_totals, blocks


def _add_optional(a, b):
    if a is None:
        return None
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim != b.ndim:
        # A1 packed (C, r(r+1)/2) and (C, r, r)
        r = (a if a.ndim == 3 else b).shape[-1]
        a, b = (x if x.ndim == 3 else kfa.unpack_symmetric(x, r) for x in (a, b))
    return a + b


class ClassRows:
    """Per-class sums ``G`` (K, C, r) of which only the rows ``index`` (sorted class indices) may
    be non-zero: what a dask partition sends back (its own classes' rows, not K of them).  Sums
    with another (or a dense array) are the dense sums' values exactly (rows absent from one side
    are added to zeros); :meth:`dense` is the (K, C, r) array."""

    __array_ufunc__ = None  # ndarray + ClassRows is ClassRows.__radd__, not a broadcast

    def __init__(self, index: np.ndarray, rows: np.ndarray):
        self.index, self.rows = np.asarray(index, dtype=np.int64), rows

    def dense(self, n_classes: int) -> np.ndarray:
        out = np.zeros((n_classes,) + self.rows.shape[1:])
        out[self.index] = self.rows
        return out

    def __add__(self, other):
        if isinstance(other, np.ndarray):
            return self.dense(len(other)) + other
        index = np.union1d(self.index, other.index)
        rows = np.zeros((len(index),) + self.rows.shape[1:])
        rows[np.searchsorted(index, self.index)] += self.rows
        rows[np.searchsorted(index, other.index)] += other.rows
        return ClassRows(index, rows)

    def __radd__(self, other):
        return other + self.dense(len(other))


@dataclass
class SessionParams:
    """What a pass over sessions needs: the posterior of x_h given per-class offsets ``o_k``.

    ``W_mean[c] = sum_d m_cd U_cd / var_cd`` (C, r_U) (``n_products``: it and the packed upper
    triangles of ``uprod``, :func:`~emkit._kernels.factor_analysis.projection_products`) and ``offset_proj[k, c] = U_c^T Sigma_c^-1
    o_kc`` (K, C, r_U) (JFA: ``o_k = V y_k``) let ``U^T Sigma^-1 (F_h - N_h (m + o_k))`` be
    computed from F_h directly.  ``step``: sessions per block of a dask partition.
    """

    shape: tuple
    U_over_var: np.ndarray  # (CD, r_U)
    uprod: np.ndarray  # (C, r_U, r_U)
    W_mean: np.ndarray  # (C, r_U)
    n_products: np.ndarray  # [W_mean | packed uprod] (C, r_U + r_U(r_U+1)/2)
    n_classes: int
    step: int
    offset_proj: np.ndarray | None = None  # (K, C, r_U)
    accumulate: bool = True  # A1 and A2F (else only G)
    totals: bool = False  # the ClassTotals too (ISV's first pass)
    class_sums: bool = True  # G (else None: JFA's V phase, whose "sessions" are the classes)


@dataclass
class SessionAccumulator:
    """Sums over sessions h of class k(h), with x_h the posterior mean and L_h its covariance.

    ``A1[c] = sum N_hc (L_h + x_h x_h^T)`` (C, r, r), or its packed upper triangles
    (C, r(r+1)/2) from in-memory passes; ``A2F = sum F_h x_h^T`` (CD, r);
    ``G[k, c] = sum_{h in k} N_hc x_h`` (K, C, r).  The U accumulator of the reference,
    ``sum (F_h - N_h (m + o_k)) x_h^T``, is ``A2F`` minus terms built from G (see
    :func:`emkit.factor_analysis._training.u_accumulator`).  ``totals`` are the
    :class:`ClassTotals` when requested.  (``x`` is not summed.)
    """

    A1: np.ndarray | None
    A2F: np.ndarray | None
    G: np.ndarray
    totals: ClassTotals | None = None
    x: np.ndarray | None = None  # in-memory passes: the posterior means (S, r), in block order

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


#: Bytes of the posterior stacks of one block of sessions (the (rows, r, r) precisions, factors
#: and second moments): larger blocks are posed in row chunks of at most this size, so that the
#: working set of a thread stays bounded whatever the block and r.
POSTERIOR_BYTES = 128 << 20


def posterior_rows(r: int) -> int:
    """Sessions per chunk of the posterior stacks (see :data:`POSTERIOR_BYTES`)."""
    per_session = 8 * (3 * r * r + r + 2 * kfa.packed_size(r))
    return max(1, POSTERIOR_BYTES // per_session)


def block_posterior(block: SessionBlock, p: SessionParams, workspace=None, A1=None):
    """The session factors of one block and its sums: ``(x (B, r), A1 (C, r(r+1)/2) packed or
    None, G (J, C, r))`` (see :class:`SessionAccumulator`; A1 only with ``p.accumulate``, G only
    with ``p.class_sums``).

    One product ``n @ [W_mean | packed uprod]`` gives the n-terms of ``b`` and the packed
    precisions; the posterior stacks are posed in chunks of :func:`posterior_rows` sessions
    (``workspace``: their scratch arrays, kept from block to block by one thread).  ``A1``: an
    array (C, r(r+1)/2) to overwrite with the block's A1 (else a new one).
    """
    n, F = block.n, block.F
    r = p.U_over_var.shape[1]
    terms = _scratch(workspace, "terms", (len(n), p.n_products.shape[1]))
    np.matmul(n, p.n_products, out=terms)  # (B, r + r(r+1)/2)
    # U^T Sigma^-1 (F_h - N_h m - N_h o_k) without forming the (B, CD) centred statistics
    b = F @ p.U_over_var
    b -= terms[:, :r]
    starts = kfa.segment_starts(block.local)
    if p.offset_proj is not None:
        b -= kfa.segment_offset_terms(starts, n, p.offset_proj, block.present)
    x = np.empty_like(b)
    if p.accumulate:
        A1 = np.empty((n.shape[1], kfa.packed_size(r))) if A1 is None else A1
        if len(b) == 0:
            A1.fill(0.0)
    else:
        A1 = None
    step = posterior_rows(r)
    for lo in range(0, len(b), step):
        rows = slice(lo, lo + step)
        x[rows], ww = kfa.session_moments(terms[rows, r:], b[rows], workspace, p.accumulate)
        if A1 is not None:  # A1 = sum n^T ww, products written into A1 (no temporaries)
            if lo == 0:
                np.matmul(n[rows].T, ww, out=A1)
            else:
                gemm_add(A1, n[rows].T, ww)
    return x, A1, (kfa.segment_class_sums(starts, n, x) if p.class_sums else None)


def block_terms(block: SessionBlock, p: SessionParams):
    """The E-step of one block: ``(A1, A2F, G)`` of its sessions (see :class:`SessionAccumulator`;
    A1 and A2F are None unless ``p.accumulate``; G (J, C, r) for the classes of the block)."""
    x, A1, G = block_posterior(block, p)
    if A1 is None:
        return None, None, G
    return kfa.unpack_symmetric(A1, x.shape[1]), block.F.T @ x, G


def session_chunk(piece, p: SessionParams) -> SessionAccumulator:
    """The E-step of a piece of the training set (a dask partition, or a list of blocks); on the
    device configured in the process where it runs (a dask worker's own configuration, e.g.
    ``client.run(emkit.set_config, device="cuda")``) when there is one."""
    from .._device_infer import device

    dev = device()
    if dev is not None:
        from ._device import chunk_pass

        return chunk_pass(piece, p, dev)
    acc = SessionAccumulator.zeros(p)
    for block in blocks(piece, p.shape, p.n_classes, p.step):
        if p.totals:
            acc.totals = add_totals(acc.totals, block, p.n_classes)
        acc.add_block(block, block_terms(block, p))
    return acc


def streamed_pass(blocks, p: SessionParams) -> SessionAccumulator:
    """The E-step of a dask partition's blocks (an iterable of :class:`SessionBlock`, read from
    a spill file as it is iterated), one at a time on this thread: what the pass over the whole
    partition stacked (``_training._blocks_pass``) gives the client (A1 packed, ``A2F``, G as
    :class:`ClassRows` of the partition's classes, the :class:`ClassTotals` with ``p.totals``;
    no x), summed in the same block order (A2F block by block, not as one product over the
    partition: the same to rounding), holding one block and its posterior, not the partition."""
    C, D = p.shape
    r = p.U_over_var.shape[1]
    A1 = np.zeros((C, kfa.packed_size(r))) if p.accumulate else None
    A2F = np.zeros((C * D, r)) if p.accumulate else None
    totals = ClassTotals.zeros(p.n_classes, C, C * D) if p.totals else None
    workspace, scratch, class_sums = {}, None, []
    for block in blocks:
        if totals is not None:
            totals.add_block(block)
        x, scratch, bG = block_posterior(block, p, workspace, scratch)
        if A1 is not None:
            A1 += scratch
            gemm_add(A2F, block.F.T, x)
        class_sums.append((block.present, bG))
        del block, x
    G = None
    if p.class_sums:
        classes = np.unique(np.concatenate([present for present, _ in class_sums]
                                           or [np.zeros(0, np.int64)]))
        G = np.zeros((len(classes), C, r))
        for present, bG in class_sums:
            G[np.searchsorted(classes, present)] += bG
        G = ClassRows(classes, G)
    return SessionAccumulator(A1, A2F, G, totals)


def class_totals_chunk(piece, shape, n_classes, step, partition=None) -> ClassTotals:
    """The :class:`ClassTotals` of a piece of the training set (dask partition number
    ``partition``, for errors)."""
    totals = None
    for block in blocks(piece, shape, n_classes, step, partition):
        totals = add_totals(totals, block, n_classes)
        del block  # (a spilled partition's: freed before the next one is read)
    if totals is None:
        C, D = shape
        totals = ClassTotals.zeros(n_classes, C, C * D)
    return totals
