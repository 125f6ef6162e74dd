"""Gaussian selection (Kaldi's ``gmm-gselect`` / ``gmm-global-gselect-to-post``) for the E-step.

For each block of frames (:data:`SELECT_ROWS` rows for steps 1-4, ``block_rows`` for step 5):

1. *cheap pass*: the float32 log-likelihoods ``log w_c N(x | mu_c, var_c)`` of all C Gaussians,
   one sgemm of the design block ``[ (x-s)**2, x-s, 1 ]`` with the coefficients (see
   :mod:`emkit._kernels.gmm`);
2. the ``top_k`` best Gaussians of each frame (:func:`top_k_columns`);
3. float64 log-likelihoods of those k only, a log-sum-exp over them (the frame's log-likelihood)
   and their posteriors, normalised over the k;
4. posteriors below ``min_posterior`` dropped and the rest renormalised to sum to one (the best
   Gaussian is always kept), as ``gmm-global-gselect-to-post --min-post`` does;
5. zeroth, first and second order statistics from the sparse (B, C) posteriors: one
   sparse-times-dense product ``R.T @ design`` with B*k (or fewer) non-zeros.

The exps, the normalisation and the statistics product shrink from C to k per frame; what remains
at C per frame is the float32 product and two cheap passes over its (B, C) result.  With
``top_k = C`` and ``min_posterior = 0`` the statistics equal the exact ones up to rounding.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy import sparse as _sparse

from .gmm import DEFAULT_BLOCK_ROWS, DiagGMMCoefficients, fill_design
from .._describe import describe

#: Rows per selection block: its (B, C) float32 log-likelihoods, read three times, stay in cache
#: (the top k cost 2.6 us per frame at C=2048 with 256 rows, 4.1 us with 1024; the sgemm the same).
SELECT_ROWS = 256

#: Number of column groups in the selection's bound: enough that the k-th largest group maximum is
#: close to the k-th largest value, few enough that partitioning the group maxima costs little.
MIN_GROUPS = 64


@dataclass(frozen=True)
class SelectionCoefficients:
    """The constants of the selection, computed once per model (not per session).

    ``coef32``: (2D+1, C) float32 for the cheap pass; ``coef_t``: (C, 2D+1) float64, one
    Gaussian's coefficients contiguous, for the exact log-likelihoods of the selected ones.
    """

    coef32: np.ndarray
    coef_t: np.ndarray

    @classmethod
    def from_coefficients(cls, coefficients: DiagGMMCoefficients) -> "SelectionCoefficients":
        coef = np.asarray(coefficients.coef, dtype=np.float64)
        return cls(np.ascontiguousarray(coef, dtype=np.float32), np.ascontiguousarray(coef.T))


def check_selection(top_k, min_posterior, n_gaussians: int,
                    names=("top_k", "min_posterior")) -> tuple[int, float]:
    """``(top_k, min_posterior)`` validated against a model of ``n_gaussians`` Gaussians.

    ``top_k``: an integer in [1, C]; ``min_posterior``: a float in [0, 1).  Errors name the
    argument (as ``names`` spells them), the range and the value received.
    """
    k_name, p_name = names
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise TypeError(f"{k_name} must be an integer in [1, {n_gaussians}] (Gaussians kept per "
                        f"frame); got {describe(top_k)}")
    if not 1 <= int(top_k) <= n_gaussians:
        raise ValueError(f"{k_name} must be in [1, {n_gaussians}] (the UBM has {n_gaussians} "
                         f"Gaussians); got {describe(top_k)}")
    if isinstance(min_posterior, bool) or not isinstance(min_posterior, numbers.Real):
        raise TypeError(f"{p_name} must be a float in [0, 1); got {describe(min_posterior)}")
    if not 0.0 <= float(min_posterior) < 1.0:
        raise ValueError(f"{p_name} must be in [0, 1) (posteriors below it are dropped); got "
                         f"{describe(min_posterior)}")
    return int(top_k), float(min_posterior)


def top_k_columns(L: np.ndarray, k: int, mask_buffer: np.ndarray | None = None) -> np.ndarray:
    """Column indices of the ``k`` largest values of each row of ``L`` (B, C), shape (B, k), in no
    particular order (ties broken arbitrarily).

    Avoids a partition of every (B, C) row: the columns are dealt into G >= k groups (column j into
    group j mod G); at least k values of a row reach the k-th largest of its G group maxima t, so
    the values >= t hold the row's top k.  They are few (about k to 2k), and are found by one
    comparison pass and a ``nonzero``, then ranked.  ``mask_buffer``: a reusable flat bool array
    of at least B*C elements.
    """
    B, C = L.shape
    if k >= C:
        return np.broadcast_to(np.arange(C), (B, C))
    n_groups = max(MIN_GROUPS, 2 * k)
    if C < 4 * n_groups:  # small models: a partition of the whole rows is cheap enough
        return np.argpartition(L, C - k, axis=1)[:, C - k:]
    gmax = L[:, :n_groups].copy()  # column j goes to group j mod G
    for start in range(n_groups, C, n_groups):
        width = min(n_groups, C - start)
        np.maximum(gmax[:, :width], L[:, start:start + width], out=gmax[:, :width])
    threshold = np.partition(gmax, n_groups - k, axis=1)[:, n_groups - k]
    if mask_buffer is None or mask_buffer.size < B * C:
        mask_buffer = np.empty(B * C, dtype=bool)
    mask = mask_buffer[:B * C].reshape(B, C)
    np.greater_equal(L, threshold[:, None], out=mask)
    flat = np.flatnonzero(mask)
    rows = flat // C
    cols = flat - rows * C
    counts = np.bincount(rows, minlength=B)
    if counts.min() == k and counts.max() == k:
        return cols.reshape(B, k)
    # pad each row's candidates (about k to 2k) into a small (B, M) matrix and partition that
    M = int(counts.max())
    pos = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]
    values = np.full((B, M), -np.inf, dtype=L.dtype)
    values[rows, pos] = L[rows, cols]
    columns = np.zeros((B, M), dtype=np.intp)
    columns[rows, pos] = cols
    best = np.argpartition(values, M - k, axis=1)[:, M - k:]
    return columns[np.arange(B)[:, None], best]


def selected_log_likelihoods(design: np.ndarray, coef_t: np.ndarray, idx: np.ndarray,
                             sub_rows: int = 128) -> np.ndarray:
    """``design[b] @ coef_t[idx[b, j]]``, shape (B, k): the log-likelihoods of the selected Gaussians
    in the precision of ``design`` and ``coef_t`` (C, 2D+1).  The gathered coefficients
    (sub_rows, k, 2D+1) stay cache-sized."""
    B, k = idx.shape
    out = np.empty((B, k), dtype=np.result_type(design, coef_t))
    buffer = np.empty((min(B, sub_rows), k, coef_t.shape[1]), dtype=coef_t.dtype)
    for start in range(0, B, sub_rows):
        stop = min(start + sub_rows, B)
        # mode='clip' (the indices are valid): with 'raise', take buffers its output
        gathered = np.take(coef_t, idx[start:stop], axis=0, out=buffer[:stop - start], mode="clip")
        np.matmul(gathered, design[start:stop, :, None], out=out[start:stop, :, None])
    return out


def selected_posteriors(ll: np.ndarray, min_posterior: float):
    """Posteriors over the selected Gaussians from their log-likelihoods ``ll`` (B, k).

    Returns ``(frame_log_likelihoods (B,), posteriors (B, k))``: each row sums to one, with the
    entries below ``min_posterior`` set to zero and the rest renormalised (the largest is kept).
    """
    row_max = ll.max(axis=1)
    post = np.exp(ll - row_max[:, None])
    row_sum = post.sum(axis=1)
    frame_ll = row_max + np.log(row_sum)
    post /= row_sum[:, None]
    if min_posterior > 0.0:
        dropped = post < min_posterior
        dropped[np.arange(post.shape[0]), np.argmax(post, axis=1)] = False
        post[dropped] = 0.0
        post /= post.sum(axis=1, keepdims=True)
    return frame_ll, post


def sparse_posteriors(idx: np.ndarray, post: np.ndarray, n_gaussians: int):
    """The (B, C) CSR matrix of the posteriors ``post`` (B, k) of Gaussians ``idx`` (B, k), zeros
    left out."""
    B = idx.shape[0]
    keep = post > 0.0
    indptr = np.zeros(B + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(keep, axis=1), out=indptr[1:])
    return _sparse.csr_matrix((post[keep], idx[keep], indptr), shape=(B, n_gaussians))


class _Workspace:
    """The per-block buffers of the selection: float32 design and log-likelihoods, the mask."""

    def __init__(self, rows: int, n_features: int, n_gaussians: int):
        self.rows = rows
        self.design32 = np.empty((rows, 2 * n_features + 1), dtype=np.float32)
        self.L = np.empty((rows, n_gaussians), dtype=np.float32)
        self.mask = np.empty(rows * n_gaussians, dtype=bool)

    def select(self, design: np.ndarray, constants: SelectionCoefficients, top_k: int,
               min_posterior: float):
        """``(frame log-likelihoods (n,), Gaussians (n, k), posteriors (n, k))`` of the frames of
        the float64 design rows ``design`` (n, 2D+1), in blocks of ``rows``."""
        n = design.shape[0]
        frame_ll = np.empty(n)
        idx = np.empty((n, top_k), dtype=np.intp)
        post = np.empty((n, top_k))
        for start in range(0, n, self.rows):
            stop = min(start + self.rows, n)
            d = design[start:stop]
            d32 = self.design32[:stop - start]
            d32[...] = d
            top = top_k_columns(np.matmul(d32, constants.coef32, out=self.L[:stop - start]), top_k,
                                self.mask)
            idx[start:stop] = top
            frame_ll[start:stop], post[start:stop] = selected_posteriors(
                selected_log_likelihoods(d, constants.coef_t, top), min_posterior)
        return frame_ll, idx, post


def accumulate_selected_statistics(X: np.ndarray, coefficients: DiagGMMCoefficients, top_k: int,
                                   min_posterior: float = 0.0,
                                   block_rows: int = DEFAULT_BLOCK_ROWS,
                                   second_order: bool = True,
                                   constants: SelectionCoefficients | None = None,
                                   on_rows=None):
    """As :func:`emkit._kernels.gmm.accumulate_shifted_statistics`, with Gaussian selection
    (``on_rows(n)`` after each block of ``n`` rows, as there).

    Returns ``(log_likelihood_sum, n (C,), sum_t r (x-s) (C, D), sum_t r (x-s)**2 (C, D) or None)``
    in float64, where r are the pruned posteriors over each frame's ``top_k`` Gaussians and the
    log-likelihood of a frame is the log-sum-exp over those k.  ``top_k``, ``min_posterior`` are
    assumed valid (:func:`check_selection`).  ``constants``: the model's
    :class:`SelectionCoefficients` when the caller has them.  Memory: O(block_rows (2D+1+3k)
    + C (2D+1) + SELECT_ROWS (C + k (2D+1))); the cheap pass runs in blocks of
    :data:`SELECT_ROWS` rows.
    """
    N, D = X.shape
    C = coefficients.n_gaussians
    if constants is None:
        constants = SelectionCoefficients.from_coefficients(coefficients)
    first = 0 if second_order else D
    acc = None
    total_ll = 0.0
    B = min(block_rows, max(N, 1))
    work = _Workspace(min(B, SELECT_ROWS), D, C)
    design = np.empty((B, 2 * D + 1), dtype=np.float64)
    for start in range(0, N, B):
        n = min(start + B, N) - start
        d = fill_design(X[start:start + n], coefficients.shift, design[:n])
        frame_ll, idx, post = work.select(d, constants, top_k, min_posterior)
        total_ll += float(np.sum(frame_ll))
        part = sparse_posteriors(idx, post, C).T @ d[:, first:]
        acc = part if acc is None else np.add(acc, part, out=acc)
        if on_rows is not None:
            on_rows(n)
    if acc is None:  # no rows
        acc = np.zeros((C, 2 * D + 1 - first))
    n_c = acc[:, -1].copy()
    px = acc[:, -1 - D:-1].copy()
    pxx = acc[:, :D].copy() if second_order else None
    return total_ll, n_c, px, pxx


def accumulate_selected_session_statistics(X: np.ndarray, lengths, coefficients: DiagGMMCoefficients,
                                           top_k: int, min_posterior: float = 0.0,
                                           constants: SelectionCoefficients | None = None):
    """The statistics of each of S sessions whose frames are the consecutive rows of ``X`` (N, D),
    ``lengths`` (S,) summing to N, with Gaussian selection.

    One pass over the frames of all sessions (blocks span sessions: a short session costs no
    block of its own) and one sparse product whose rows are (session, Gaussian) pairs.  Returns
    ``(log_likelihoods (S,), n (S, C), sum r (x-s) (S, C, D), sum r (x-s)**2 (S, C, D))``, views
    of one (S, C, 2D+1) array.  Memory: O(N (2D+1 + 3k) + S C (2D+1)).
    """
    N, D = X.shape
    C = coefficients.n_gaussians
    lengths = np.asarray(lengths, dtype=np.intp)
    S = lengths.shape[0]
    if constants is None:
        constants = SelectionCoefficients.from_coefficients(coefficients)
    design = fill_design(X, coefficients.shift, np.empty((N, 2 * D + 1)))
    work = _Workspace(max(1, min(N, SELECT_ROWS)), D, C)
    frame_ll, idx, post = work.select(design, constants, top_k, min_posterior)
    owner = np.repeat(np.arange(S), lengths)
    idx += (owner * C)[:, None]  # column (session, Gaussian) of the (N, S C) posteriors
    acc = np.asarray(sparse_posteriors(idx, post, S * C).T @ design).reshape(S, C, 2 * D + 1)
    ll = np.bincount(owner, weights=frame_ll, minlength=S)
    return ll, acc[:, :, -1], acc[:, :, D:2 * D], acc[:, :, :D]
