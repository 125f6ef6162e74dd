"""Total-variability (i-vector) kernels: packed precisions, per-utterance LAPACK, stacked solves.

Notation: S utterances in a batch, C Gaussians, D features, R = ``dim_t``.  ``T`` is (C, D, R),
``sigma`` (C, D), ``n`` (S, C), centred first-order statistics ``fnorm = F - n m`` (S, C, D).

For utterance s the posterior of the latent factor w is Gaussian with precision
``P_s = I + sum_c n_sc T_c' sigma_c^-1 T_c`` and mean ``w_s = P_s^-1 b_s`` with
``b_s = sum_c T_c' sigma_c^-1 fnorm_sc``.  All P_s of a batch come from ONE matrix product
``n (S, C) @ TtSigT (C, R(R+1)/2)`` on the packed lower triangles (the symmetric half).  The
E-step (:func:`accumulate_centred`) factorises and inverts each P_s with LAPACK on one (R, R)
buffer per thread (:mod:`.packed`: potrf, potrs, a recursive triangular inverse, lauum), writes
``P_s^-1 + w_s w_s'`` back over its packed precision, and adds ``n' @ packed`` to the packed
accumulator by BLAS with beta = 1.  The projection (:func:`project`) needs the means alone:
potrf and potrs per utterance on the same packed precisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import packed as pk
from ._ivector_messages import NOT_POSITIVE_DEFINITE
from .compensated import centred_second_moments
from .packed import scratch as _scratch

LOG_2PI = np.log(2.0 * np.pi)

#: Bound on the temporary of :func:`gemm_accumulate` (and the M-step's blocks of Gaussians).
DEFAULT_BATCH_BYTES = 64 * 2**20

#: Bound on the copies of the statistics' blocks that the first-order accumulator update makes.
_COPY_BYTES = 8 * 2**20

#: Fixed part of the E-step's memory budget (see :func:`default_batch_size`).
BATCH_SLACK_BYTES = 256 * 2**20

#: Largest default batch: the accumulator update ``(C, S) @ (S, R*R)`` does ``2 S`` flops per
#: accumulator entry read and written (16 bytes), S / 8 flops per byte; at 512 utterances (64
#: flops per byte) it is compute-bound on any current CPU, and larger batches only cost memory.
MAX_BATCH = 512


def accumulator_bytes(dim_c: int, dim_d: int, dim_t: int) -> int:
    """Bytes of one set of E-step accumulators: (C, R, R), (C, D, R), (C, D) and (C,) float64."""
    C, D, R = dim_c, dim_d, dim_t
    return 8 * (C * R * R + C * D * R + C * D + C)


def constants_bytes(dim_c: int, dim_d: int, dim_t: int) -> int:
    """Bytes of the :class:`Precomputed` constants: (C, R(R+1)/2) and (C, D, R) float64."""
    C, D, R = dim_c, dim_d, dim_t
    return 8 * (C * (R * (R + 1) // 2) + C * D * R)


def batch_bytes(batch: int, dim_c: int, dim_d: int, dim_t: int, projection: bool = False) -> int:
    """Peak bytes of the temporaries of one batch of ``batch`` utterances (upper bound).

    E-step (:func:`accumulate_centred`), per utterance: its statistics stacked and centred when
    ``fit`` streams them (``n``, ``sum_px``, ``sum_pxx``, ``fnorm`` and the product ``n m``:
    C + 4 C*D), its packed precision, overwritten by the packed moments (R(R+1)/2), and a few
    R-vectors (``b``, ``w``); plus the :func:`gemm_accumulate` block (one (R, R) buffer per thread
    fits in it).  ``projection`` (``IVectorMachine.transform``): per utterance its stacked
    statistics (``n`` and ``sum_px``, centred in place: C + C*D), its packed precision and two
    R-vectors; per batch a block of ``n m`` (:func:`centre_in_place`: at most 8 MB or one
    utterance's C*D) and the (R, R) buffer of :func:`project`.
    """
    C, D, R = dim_c, dim_d, dim_t
    K = R * (R + 1) // 2
    if projection:
        return batch * 8 * (C * D + C + K + 2 * R) + max(_COPY_BYTES, 8 * C * D) + 8 * R * R
    return batch * 8 * (4 * C * D + C + K + 4 * R) + DEFAULT_BATCH_BYTES


def default_batch_size(dim_c: int, dim_d: int, dim_t: int) -> int:
    """Utterances per E-step batch, from arithmetic intensity and a memory budget.

    Every batch reads the (C, R(R+1)/2) constants and reads and writes the (C, R(R+1)/2) packed
    accumulator once, so the batch should be as large as memory allows, up to
    :data:`MAX_BATCH` (where the products are compute-bound).  Budget: the accumulators plus one
    batch's temporaries (:func:`batch_bytes`) take at most ``1.5 * accumulator_bytes + 256 MB``,
    i.e. the batch's temporaries at most half the accumulators plus 256 MB.  At least one
    utterance.  (While the batches run, the (C, R, R) accumulator is summed as its packed half;
    ``fit`` never writes the full one, :func:`flush_packed` writes it after the last batch
    otherwise: resident accumulators stay within 1.5x.  The model's constants,
    :class:`Precomputed`, and the statistics themselves come on top.)
    """
    budget = accumulator_bytes(dim_c, dim_d, dim_t) // 2 + BATCH_SLACK_BYTES
    per_utterance = batch_bytes(1, dim_c, dim_d, dim_t) - DEFAULT_BATCH_BYTES
    return int(min(MAX_BATCH, max(1, (budget - DEFAULT_BATCH_BYTES) // per_utterance)))


#: Smallest default projection batch: its product ``n (S, C) @ TtSigT (C, R(R+1)/2)`` reads the
#: constants once per batch, S / 4 flops per byte (16 per byte at 64 utterances).
MIN_PROJECTION_BATCH = 64


def projection_batch_size(dim_c: int, dim_d: int, dim_t: int, concurrent: int = 1) -> int:
    """Utterances per projection batch when ``concurrent`` batches run at once (one per thread).

    Budget: the temporaries of all concurrent batches (:func:`batch_bytes` with ``projection``)
    take at most the size of the constants (:func:`constants_bytes`, which a projection holds
    anyway) plus 256 MB, so a projection needs at most about twice its constants whatever the
    number of threads; within :data:`MIN_PROJECTION_BATCH` and :data:`MAX_BATCH` utterances
    (C=2048, D=60, R=400: 512 per batch on 2 threads, 69 on 16).
    """
    C, D, R = dim_c, dim_d, dim_t
    share = (constants_bytes(C, D, R) + BATCH_SLACK_BYTES) // max(1, concurrent)
    fixed = batch_bytes(0, C, D, R, projection=True)
    per_utterance = batch_bytes(1, C, D, R, projection=True) - fixed
    return int(min(MAX_BATCH, max(MIN_PROJECTION_BATCH, (share - fixed) // per_utterance)))


# ---------------------------------------------------------------------------------------------
# E-step
# ---------------------------------------------------------------------------------------------


def _serial_map(fn, items):
    return [fn(item) for item in items]


@dataclass(frozen=True)
class Precomputed:
    """Per-iteration constants derived from the parameters, shared by every batch."""

    means: np.ndarray  # (C, D) UBM means
    inv_sigma: np.ndarray  # (C, D)
    t_sigma_inv: np.ndarray  # (C*D, R): rows of sigma^-1 T
    tt_lower: np.ndarray  # (C, R(R+1)/2): lower triangles of T_c' sigma_c^-1 T_c (symmetric)
    log_norm: np.ndarray  # (C,): -(D log 2 pi + sum_d log sigma_cd) / 2

    @classmethod
    def from_parameters(cls, means, T, sigma, parallel_map=None, n_pieces: int = 1,
                        budget_bytes: int = DEFAULT_BATCH_BYTES, reuse=None) -> "Precomputed":
        """The constants of T (C, D, R) and sigma (C, D), Gaussian by Gaussian, in ``n_pieces``
        runs of Gaussians in parallel with ``parallel_map`` (``budget_bytes`` is not used: each
        run needs one (R, R) product).  ``reuse``: an earlier :class:`Precomputed` of the same
        shape, no longer needed, whose two large arrays are overwritten (fresh arrays of that
        size are faulted in page by page, as system time: a second at C=2048, R=400)."""
        C, D, R = T.shape
        if reuse is not None and reuse.shape == (C, D, R):
            t_sigma_inv, tt_lower = reuse.t_sigma_inv.reshape(C, D, R), reuse.tt_lower
        else:
            t_sigma_inv, tt_lower = np.empty((C, D, R)), np.empty((C, R * (R + 1) // 2))
        sigma = np.asarray(sigma, dtype=np.float64)
        inv_sqrt_sigma = 1.0 / np.sqrt(sigma)

        def fill(piece):  # one Gaussian at a time on reused (D, R), (R, R) buffers
            scaled, gram = np.empty((D, R)), np.empty((R, R))
            for c in piece:
                np.divide(T[c], sigma[c, :, None], out=t_sigma_inv[c])
                # T_c' sigma_c^-1 T_c = A'A with A = sigma_c^-1/2 T_c: dsyrk, half the products
                np.multiply(T[c], inv_sqrt_sigma[c, :, None], out=scaled)
                pk.gram_lower(scaled, tt_lower[c], gram)

        pieces = [range(C)[sl] for sl in _pieces(C, n_pieces)]
        run = parallel_map if parallel_map is not None and n_pieces > 1 else _serial_map
        run(fill, pieces)
        return cls(
            means=np.asarray(means, dtype=np.float64),
            inv_sigma=1.0 / sigma,
            t_sigma_inv=t_sigma_inv.reshape(C * D, R),
            tt_lower=tt_lower,
            log_norm=-0.5 * (D * LOG_2PI + np.log(sigma).sum(axis=1)),
        )

    @property
    def shape(self):
        C, D = self.means.shape
        return C, D, self.t_sigma_inv.shape[1]


def flush_packed(workspace, acc, parallel_map=None, n_pieces: int = 1) -> None:
    """Add the packed lower triangles that :func:`accumulate_centred` summed in ``workspace``
    (C, R(R+1)/2) to ``acc.nij_sigma_wij2`` (C, R, R), both triangles; frees the workspace.

    The full accumulator is written only here, once per E-step, after the batches' scratch
    stacks are freed: at most the accumulators and the packed half are resident (1.5x).  Blocks
    of Gaussians (on ``parallel_map`` when ``n_pieces > 1``) expand through one gather each,
    within :data:`DEFAULT_BATCH_BYTES` together.
    """
    packed = workspace.pop("packed", None)
    workspace.clear()
    if packed is None:
        return
    full = acc.nij_sigma_wij2
    C, R = full.shape[0], full.shape[-1]
    index = pk.symmetric_index(R)
    n_pieces = n_pieces if parallel_map is not None else 1
    block = max(1, min(DEFAULT_BATCH_BYTES // (8 * R * R * n_pieces), -(-C // n_pieces)))
    starts = range(0, C, block)
    pieces = [starts[sl] for sl in _pieces(len(starts), n_pieces)]

    def expand(piece):
        scratch = np.empty((block, R * R))
        for start in piece:
            rows = slice(start, min(C, start + block))
            k = rows.stop - rows.start
            np.take(packed[rows], index, axis=1, out=scratch[:k])
            target = full[rows]
            target += scratch[:k].reshape(k, R, R)

    (parallel_map if n_pieces > 1 else _serial_map)(expand, pieces)


def linear_terms(fnorm: np.ndarray, pre: Precomputed) -> np.ndarray:
    """``b_s = sum_c T_c' sigma_c^-1 fnorm_sc`` for fnorm (S, C, D): (S, R)."""
    return fnorm.reshape(fnorm.shape[0], -1) @ pre.t_sigma_inv


def centre_in_place(n: np.ndarray, sum_px: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``sum_px -= n m`` for n (S, C), sum_px (S, C, D) and means (C, D), in blocks of
    utterances whose product ``n m`` takes at most 8 MB; returns ``sum_px`` (now ``fnorm``)."""
    S, C, D = sum_px.shape
    step = max(1, _COPY_BYTES // (8 * C * D))
    for start in range(0, S, step):
        block = slice(start, start + step)
        sum_px[block] -= n[block, :, None] * means
    return sum_px


def project(n: np.ndarray, fnorm: np.ndarray, pre: Precomputed) -> np.ndarray:
    """Posterior means ``w_s = P_s^-1 b_s`` (the i-vectors) of a batch: (S, R).  The packed
    halves of the precisions go to LAPACK one by one (numpy's stacked Cholesky of the square
    matrices took a quarter of a projection at C=2048, R=400)."""
    S, R = n.shape[0], pre.shape[2]
    packed = n @ pre.tt_lower  # P_s - I, packed lower triangles
    w = np.empty((S, R))
    try:
        pk.posterior_means(packed, linear_terms(fnorm, pre), w, np.empty((R, R)))
    except pk.NotPositiveDefinite:
        raise ValueError(NOT_POSITIVE_DEFINITE) from None
    return w


def _pieces(n_items: int, n_pieces: int):
    edges = np.linspace(0, n_items, max(1, min(n_pieces, n_items)) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


@dataclass(frozen=True)
class CentredBatch:
    """The statistics of a batch centred on the UBM means: what the E-step reads of them.

    ``n`` (S, C), ``fnorm = F - n m`` (S, C, D), ``snorm`` (C, D) = the batch's sum of
    ``S - 2 F m + n m**2``; both computed once (:func:`centre_batch`) in compensated arithmetic.
    """

    n: np.ndarray
    fnorm: np.ndarray
    snorm: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.n.nbytes + self.fnorm.nbytes + self.snorm.nbytes


def centre_batch(n, sum_px, sum_pxx, means) -> CentredBatch:
    """:class:`CentredBatch` of raw statistics n (S, C), sum_px and sum_pxx (S, C, D)."""
    fnorm = sum_px - n[:, :, None] * means
    return CentredBatch(n, fnorm, centred_second_moments(sum_pxx, sum_px, n, means))


def accumulate(n, sum_px, sum_pxx, pre: Precomputed, acc, parallel_map=None,
               n_pieces: int = 1, workspace=None) -> tuple[float, int]:
    """Add the E-step statistics of one batch to ``acc`` (an object with the accumulator arrays);
    return the batch's ``(log-likelihood, number of utterances)``.

    n (S, C), sum_px and sum_pxx (S, C, D): :func:`accumulate_centred` of :func:`centre_batch`.
    """
    return accumulate_centred(centre_batch(n, sum_px, sum_pxx, pre.means), pre, acc, parallel_map,
                              n_pieces, workspace)


def accumulate_centred(batch: CentredBatch, pre: Precomputed, acc, parallel_map=None,
                       n_pieces: int = 1, workspace=None) -> tuple[float, int]:
    """Add the E-step statistics of one :class:`CentredBatch` to the arrays of ``acc``; return
    the batch's ``(log-likelihood, number of utterances)`` for the caller to count.

    ``acc`` has the arrays ``nij_sigma_wij2`` (C, R, R), ``fnorm_sigma_wij`` (C, D, R),
    ``snormij`` (C, D) and ``nij`` (C,), updated in place.  With ``parallel_map(fn, items)`` (e.g. a thread
    pool's ordered map) and ``n_pieces > 1``, the posteriors of slices of the batch, then the
    updates of slices of the Gaussians' accumulator rows, run in parallel: one accumulator only.
    ``workspace`` (a dict, kept from batch to batch) holds the scratch arrays for reuse and the
    symmetric half of the (C, R, R) accumulator, packed (``workspace["packed"]``, (C, R(R+1)/2),
    created if missing): call :func:`flush_packed` after the last batch to add it to ``acc``.
    Without a workspace, this batch's packed half is added to ``acc`` at once.
    ``workspace["overwrite"] = True`` (removed here) says that the accumulators hold nothing
    worth keeping (a recycled :class:`~emkit.ivector.IVectorStats`): this batch overwrites them
    instead of adding to them, which saves zeroing them (or faulting in fresh ones).
    """
    if workspace is None:  # a packed accumulator of this batch alone
        workspace = {}
        result = accumulate_centred(batch, pre, acc, parallel_map, n_pieces, workspace)
        flush_packed(workspace, acc)
        return result
    n, fnorm, snorm = batch.n, batch.fnorm, batch.snorm
    S, (C, D, R) = n.shape[0], pre.shape
    K = R * (R + 1) // 2
    run = parallel_map if parallel_map is not None and n_pieces > 1 else _serial_map
    # the precisions column-wise (each thread reads its own columns of the big constant), the
    # posteriors utterance-wise, the accumulators row-wise: every piece writes its own slice
    lower = _scratch(workspace, "lower", (S, K))
    run(lambda cols: np.matmul(n, pre.tt_lower[:, cols], out=lower[:, cols]), _pieces(K, n_pieces))
    w, utt_ll = _scratch(workspace, "w", (S, R)), _scratch(workspace, "ll", (S,))
    utterances = _pieces(S, n_pieces)

    def posteriors(i):  # P^-1 + w w', packed, over the precisions (LAPACK on one buffer each)
        sl = utterances[i]
        b = linear_terms(fnorm[sl], pre)
        try:
            pk.posterior_rows(lower[sl], b, w[sl], utt_ll[sl], _scratch(workspace, ("P", i), (R, R)))
        except pk.NotPositiveDefinite:
            raise ValueError(NOT_POSITIVE_DEFINITE) from None

    run(posteriors, range(len(utterances)))
    beta = 0.0 if workspace.pop("overwrite", False) else 1.0
    second = workspace.get("packed")
    if second is None:  # the symmetric half only, packed (see flush_packed)
        second = workspace["packed"] = np.zeros((C, K))
    first = acc.fnorm_sigma_wij.reshape(C * D, R)
    fnorm2 = fnorm.reshape(S, C * D)
    rows = _pieces(C, n_pieces)

    def update(i):
        pk.gemm_add(second[rows[i]], n.T[rows[i]], lower, beta)
        # in row blocks: BLAS gets a copy of each block of the statistics (a strided view)
        step = max(1, _COPY_BYTES // (8 * S))
        for start in range(rows[i].start * D, rows[i].stop * D, step):
            block = slice(start, min(start + step, rows[i].stop * D))
            pk.gemm_add(first[block], fnorm2.T[block], w, beta)

    run(update, range(len(rows)))
    n_total = n.sum(axis=0)
    if beta == 0.0:
        np.copyto(acc.snormij, snorm)
        np.copyto(acc.nij, n_total)
    else:
        np.add(acc.snormij, snorm, out=acc.snormij)
        np.add(acc.nij, n_total, out=acc.nij)
    return (float(utt_ll.sum() + n_total @ pre.log_norm - 0.5 * np.sum(snorm * pre.inv_sigma)), S)


def gemm_accumulate(out: np.ndarray, a: np.ndarray, b: np.ndarray,
                    budget_bytes: int = DEFAULT_BATCH_BYTES, scratch=None) -> None:
    """``out += a @ b`` in place, in row blocks so that the temporary stays within the budget
    (at least one row); ``scratch``, a flat float64 array, is used for the block if large enough.

    (:func:`.packed.gemm_add` avoids the temporary with scipy's ``dgemm`` and beta = 1, but on a
    second OpenBLAS, whose spinning threads fight numpy's unless BLAS runs single-threaded, as
    in the E-step.)
    """
    rows = min(out.shape[0], max(1, int(budget_bytes // (8 * max(1, out.shape[1])))))
    if scratch is not None and scratch.size >= rows * out.shape[1]:
        block = scratch[: rows * out.shape[1]].reshape(rows, out.shape[1])
    else:  # one block, reused: fresh ones are faulted in anew
        block = np.empty((rows, out.shape[1]))
    for r0 in range(0, out.shape[0], rows):
        k = min(rows, out.shape[0] - r0)
        np.matmul(a[r0 : r0 + k], b, out=block[:k])
        out[r0 : r0 + k] += block[:k]


# ---------------------------------------------------------------------------------------------
# M-step
# ---------------------------------------------------------------------------------------------


def m_step(nij_sigma_wij2, fnorm_sigma_wij, snormij, nij, sigma, update_sigma: bool,
           variance_floor: float, budget_bytes: int = DEFAULT_BATCH_BYTES, parallel_map=None,
           n_pieces: int = 1):
    """New ``(T (C, D, R), sigma (C, D))`` from summed accumulators (``nij_sigma_wij2`` (C, R, R),
    or its packed lower triangles (C, R(R+1)/2), as the E-step sums it).

    ``T_c = fnorm_sigma_wij_c A_c^-1`` with ``A_c = nij_sigma_wij2_c'`` (Cholesky solve, LAPACK,
    for each Gaussian whose A_c is not all zero; the others get ``T_c = 0`` as in the
    reference).  With ``update_sigma``, ``sigma_c = (snormij_c - diag(fnorm_sigma_wij_c T_c')) /
    nij_c`` floored at ``variance_floor``; a Gaussian with ``nij_c = 0`` keeps its ``sigma_c``.
    With ``parallel_map(fn, items)`` and ``n_pieces > 1``, runs of Gaussians are solved in
    parallel (each Gaussian's solve is the same whatever its run).  ``budget_bytes`` is not used
    (kept for callers): the working memory is one (R, R) matrix per run.
    """
    C, D, R = fnorm_sigma_wij.shape
    packed = nij_sigma_wij2.ndim == 2
    T = np.zeros((C, D, R))
    explained = np.zeros((C, D))  # diag(fnorm_sigma_wij_c T_c'), for the new sigma
    run = parallel_map if parallel_map is not None and n_pieces > 1 else _serial_map

    # Gaussian by Gaussian: LAPACK potrf/potrs on one reused (R, R) buffer; every temporary is
    # per Gaussian (whole-array ones, (C, D, R) or larger, were a third of the M-step at C=2048)
    def solve(piece):
        buffer = np.empty((R, R))
        for c in piece:
            A_c = nij_sigma_wij2[c]
            if not A_c.any():  # T_c = 0, as in the reference
                continue
            if packed:  # buffer's lower triangle, i.e. the upper one of A_c = buffer.T
                pk.unpack_lower(np.ascontiguousarray(A_c), buffer)
            else:
                np.copyto(buffer, A_c)
            np.copyto(T[c], fnorm_sigma_wij[c])
            info = pk.cholesky_solve(buffer, T[c], lower=not packed)  # through ctypes: no GIL
            if info != 0:
                # numerically semi-definite (vanishing occupancies): LU, as the reference does
                A = A_c[pk.symmetric_index(R)].reshape(R, R) if packed else A_c.T
                T[c] = np.linalg.solve(A, fnorm_sigma_wij[c].T).T
            np.einsum("dr,dr->d", fnorm_sigma_wij[c], T[c], out=explained[c])

    run(solve, [range(C)[sl] for sl in _pieces(C, n_pieces)])
    if not update_sigma:
        return T, sigma
    occupied = nij > 0
    new_sigma = np.array(sigma, dtype=np.float64, copy=True)
    updated = (snormij[occupied] - explained[occupied]) / nij[occupied, None]
    updated[updated < variance_floor] = variance_floor
    new_sigma[occupied] = updated
    return T, new_sigma
