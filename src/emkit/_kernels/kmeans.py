"""k-means kernels: squared distances as a matrix product, nearest centroids, per-cluster sums.

The argmin over ``||c||^2 - 2 x.c`` (data and centroids shifted by the centroids' mean to keep the
expansion well conditioned) is one matrix product per row block; the distance to the chosen
centroid is then recomputed exactly as ``sum_d (x_d - c_d)^2``, so reported distances carry no
cancellation error.  Per-cluster sums use a sparse one-hot product (O(N D)); they are sums of the
deviations ``x - c`` from the assigned centroid (and of their squares), so new centroids and
cluster variances keep their precision however far the data lie from the origin.

In float64, the product is screened in float32 (:func:`_screened_assignment`): two row argmins
give each row's best and second-best float32 score, and only the rows whose gap is within the
rounding bound are scored again in float64, so the labels are those of the float64 argmin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist

DEFAULT_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class CentroidCoefficients:
    shift: np.ndarray  # (D,) float64
    centred: np.ndarray  # (K, D) float64, centroids - shift
    minus_two_centred_t: np.ndarray  # (D, K) in the compute dtype
    sq_norms: np.ndarray  # (K,) in the compute dtype

    @classmethod
    def from_centroids(cls, centroids, dtype=np.float64) -> "CentroidCoefficients":
        centroids = np.asarray(centroids, dtype=np.float64)
        shift = centroids.mean(axis=0)
        centred = centroids - shift
        # one temporary of the centroids' size at a time (a loaded machine computes these)
        sq_norms = np.sum(centred * centred, axis=1).astype(dtype)
        minus_two_centred_t = np.multiply(centred.T, -2.0, order="C").astype(dtype, copy=False)
        return cls(shift=shift, centred=centred, minus_two_centred_t=minus_two_centred_t,
                   sq_norms=sq_norms)

    @property
    def n_clusters(self) -> int:
        return self.centred.shape[0]


def _augmented(coef: CentroidCoefficients) -> np.ndarray:
    """``[-2 (c - s)^T ; ||c - s||^2]`` (D+1, K): with a column of ones after the centred rows, the
    scores ``||c||^2 - 2 x.c`` come out of the product without another pass over the block."""
    return np.concatenate([coef.minus_two_centred_t, coef.sq_norms[None, :]])


#: Screening relative error: a float32 score of ``[x - s, 1] . [-2 (c - s) ; ||c - s||^2]`` is within
#: ``gamma * (2 ||x - s|| max||c - s|| + max||c - s||^2)`` of the exact score, with
#: ``gamma = m u / (1 - m u)``, ``u = 2**-24``, m = D + 3 (the product and the two roundings to float32).
def _screen_gamma(n_features: int) -> float:
    m = (n_features + 3) * 2.0**-24
    return m / (1.0 - m)


def _screen(coef: CentroidCoefficients, augmented, B):
    """Float32 copies for screening float64 assignments (see :func:`_screened_assignment`): the
    augmented centroids, the margin per unit of ``||x - s||`` and its constant term, the norms
    ``||c - s||``, row and score buffers and the offsets of the rows in the flat scores; or None
    where screening does not pay (float32 compute, a handful of clusters)."""
    K, D = coef.centred.shape
    if augmented.dtype != np.float64 or K < 8:
        return None
    xa32 = np.empty((B, D + 1), dtype=np.float32)
    xa32[:, D] = 1.0
    c_norms = np.sqrt(np.einsum("ij,ij->i", coef.centred, coef.centred))
    c_max = float(np.max(c_norms))
    with np.errstate(over="ignore"):
        aug32 = augmented.astype(np.float32)
    margin = 2.5 * _screen_gamma(D)  # twice the bound, and 25% to spare
    return (aug32, margin * 2.0 * c_max, margin * c_max * c_max, c_norms, xa32,
            np.empty((B, K), dtype=np.float32), np.arange(0, B * K, K))


def _deviations(xc, centred, labels):
    """``x - c`` of each row from its centroid (n, D) and its squared norm (n,)."""
    diff = np.take(centred, labels, axis=0)
    np.subtract(xc, diff, out=diff)
    return diff, np.einsum("ij,ij->i", diff, diff)


def _screened_assignment(xa, xc, centred, augmented, screen):
    """:func:`_deviations` from the float64 argmin of ``xa @ augmented`` per row, found by a
    float32 product: a row whose best float32 score beats its second best by more than twice the
    error bound (see :func:`_screen_gamma`) has the exact nearest centroid; the other rows
    (near-ties, or scores outside float32's range) are scored again in float64.

    The bound's ``||x - s||`` is bounded by ``||x - c|| + ||c - s||`` for the float32 centroid c
    (``||x - c||`` is needed anyway): no pass over the rows for their norms.
    """
    aug32, per_norm, constant, c_norms, xa32_buf, s32_buf, row_offsets = screen
    n = xc.shape[0]
    xa32 = xa32_buf[:n]
    with np.errstate(over="ignore", invalid="ignore"):  # out of float32's range: rescored below
        np.copyto(xa32, xa, casting="unsafe")
        scores = np.matmul(xa32, aug32, out=s32_buf[:n])
        labels = np.argmin(scores, axis=1)
        # the second best by a second argmin (numpy's argmin along rows is several times faster
        # than its min), the best masked by inf in the flat scores
        flat = scores.reshape(-1)
        at = row_offsets[:n] + labels
        best = flat.take(at)
        flat[at] = np.inf
        at += np.argmin(scores, axis=1) - labels
        gap = np.subtract(flat.take(at), best, dtype=np.float64)
    diff, min_dist = _deviations(xc, centred, labels)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = np.sqrt(min_dist)
        bound += c_norms.take(labels)
        bound *= per_norm
        bound += constant
    unsure = np.flatnonzero(~(gap > bound))  # NaN/inf gaps are unsure too
    if unsure.size:
        labels[unsure] = np.argmin(xa[unsure] @ augmented, axis=1)
        diff[unsure], min_dist[unsure] = _deviations(xc[unsure], centred, labels[unsure])
    return labels, diff, min_dist


def _assign_block(X_block, coef: CentroidCoefficients, centred_buf, scores_buf, with_diff=False,
                  augmented=None, screen=None):
    """Nearest centroid of each row and the exact squared distance to it (and ``x - c``, (n, D)).

    ``centred_buf`` is (B, D+1) with ones in its last column (see :func:`_buffers`), or (B, D);
    ``augmented`` is :func:`_augmented` of ``coef``, computed here when not given; ``screen``
    (:func:`_screen`) finds the same nearest centroids as the float64 product, mostly in float32.
    """
    n, D = X_block.shape
    if centred_buf.shape[1] == D:
        centred_buf = np.concatenate([centred_buf, np.ones((len(centred_buf), 1), centred_buf.dtype)], axis=1)
    xa = centred_buf[:n]
    xc = xa[:, :D]
    np.subtract(X_block, coef.shift, out=xc, casting="unsafe")
    augmented = _augmented(coef) if augmented is None else augmented
    if screen is not None:
        labels, diff, min_dist = _screened_assignment(xa, xc, coef.centred, augmented, screen)
    else:
        labels = np.argmin(np.matmul(xa, augmented, out=scores_buf[:n]), axis=1)
        diff, min_dist = _deviations(xc, coef.centred, labels)
    if with_diff:
        return labels, min_dist, diff
    return labels, min_dist


def _buffers(n_rows, n_features, n_clusters, dtype, block_rows):
    """The (B, D+1) centred rows with a last column of ones, and the (B, K) scores."""
    B = min(block_rows, max(n_rows, 1))
    centred = np.empty((B, n_features + 1), dtype=dtype)
    centred[:, n_features] = 1.0
    return centred, np.empty((B, n_clusters), dtype=dtype)


def assign(X, coef: CentroidCoefficients, block_rows: int = DEFAULT_BLOCK_ROWS, scale: float = 1.0,
           on_rows=None):
    """Index of the nearest centroid (N,) and the squared distance to it (N,).  ``scale``: the rows
    are multiplied by it first, block by block (``coef`` holds centroids of scaled data then).
    ``on_rows(n)`` (optional) is called after each block of ``n`` rows (a progress count)."""
    N, D = X.shape
    labels = np.empty(N, dtype=np.intp)
    min_dist = np.empty(N, dtype=np.float64)
    centred_buf, scores_buf = _buffers(N, D, coef.n_clusters, coef.minus_two_centred_t.dtype, block_rows)
    augmented = _augmented(coef)
    screen = _screen(coef, augmented, len(centred_buf))
    for start in range(0, N, block_rows):
        stop = min(start + block_rows, N)
        block = X[start:stop] if scale == 1.0 else np.multiply(X[start:stop], scale, dtype=np.float64)
        labels[start:stop], min_dist[start:stop] = _assign_block(block, coef, centred_buf, scores_buf,
                                                                 augmented=augmented, screen=screen)
        if on_rows is not None:
            on_rows(stop - start)
    return labels, min_dist


def _one_hot(labels, n_clusters, reuse=None):
    """The (K, n) CSC one-hot of ``labels``: one non-zero per column, so it needs no sorting, and
    its product adds each row into its cluster's row in row order.  ``reuse``, a one-hot of as
    many rows, gets the new labels in place (no construction, for the blocks of a pass)."""
    n = len(labels)
    if reuse is not None and reuse.shape == (n_clusters, n):
        reuse.indices[:] = labels
        return reuse
    return sp.csc_array((np.ones(n), np.asarray(labels, dtype=np.intp), np.arange(n + 1)), shape=(n_clusters, n))


def cluster_sums(X_block, labels, n_clusters, *, squares: bool = False, onehot=None):
    """Per-cluster sums of the rows (and of their squares): float64 (K, D) arrays (``onehot``:
    :func:`_one_hot` of ``labels``, when already built)."""
    onehot = _one_hot(labels, n_clusters) if onehot is None else onehot
    X64 = np.asarray(X_block, dtype=np.float64)
    sums = np.asarray(onehot @ X64)
    if not squares:
        return sums, None
    return sums, np.asarray(onehot @ (X64 * X64))


def top_indices(values: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` largest values, largest first, ties by position: the first ``m`` of
    a stable sort by decreasing value (as the device kernels'), without sorting them all."""
    if len(values) <= m:
        return np.lexsort((np.arange(len(values)), -values))
    kth = np.partition(values, len(values) - m)[len(values) - m]  # the m-th largest
    above = np.flatnonzero(values > kth)
    part = np.concatenate([above, np.flatnonzero(values == kth)[: m - len(above)]])
    return part[np.lexsort((part, -values[part]))]


class FarthestRows:
    """The ``m`` rows of a pass farthest from their centroids, farthest first, ties to the
    earlier row: candidates (rows beyond the nearest of the ``m`` kept at the last reduction)
    are gathered block by block and reduced to the best ``m`` only when they outnumber ``3 m``
    (a sort after every block cost 7-15% of a single-thread Lloyd pass); the rows themselves
    are read at the end."""

    def __init__(self, m: int):
        self.m, self.threshold, self.count = m, -np.inf, 0
        self.rows, self.dists = [np.empty(0, dtype=np.intp)], [np.empty(0)]

    def add(self, first_row: int, dists) -> None:
        """Offer the rows ``first_row, first_row + 1, ...`` at squared distances ``dists``."""
        local = np.flatnonzero(dists > self.threshold)
        if len(local):
            self.rows.append(local + first_row)
            self.dists.append(dists[local])
            self.count += len(local)
            if self.count > 3 * self.m:
                self._reduce()

    def _reduce(self):
        rows, dists = np.concatenate(self.rows), np.concatenate(self.dists)
        keep = top_indices(dists, self.m)  # row order in the candidates: ties to the earlier
        self.rows, self.dists, self.count = [rows[keep]], [dists[keep]], len(keep)
        if len(keep) == self.m:
            self.threshold = dists[keep[-1]]

    def result(self, X):
        """``(points (k, D) float64, dists (k,))`` with k = min(m, rows offered)."""
        self._reduce()
        return np.asarray(X[self.rows[0]], dtype=np.float64), self.dists[0]


def lloyd_statistics(X, coef: CentroidCoefficients, block_rows: int = DEFAULT_BLOCK_ROWS, *,
                     squares: bool = False, n_far: int = 0, on_rows=None):
    """Statistics of one Lloyd step over the rows of ``X``.

    Returns a dict with ``counts`` (K,) int64, ``sums`` (K, D) of ``x - c`` over the rows assigned
    to each centroid c (``c = coef.shift + coef.centred``), ``sum_min_dist`` (float), ``sq_sums``
    (K, D) of ``(x - c)**2`` or None, and the ``n_far`` rows farthest from their centroid
    (``far_points`` (m, D), ``far_dists`` (m,)), all float64.  ``on_rows(n)`` (optional) is called
    after each block of ``n`` rows (a progress count).
    """
    N, D = X.shape
    K = coef.n_clusters
    counts = np.zeros(K, dtype=np.int64)
    sums = np.zeros((K, D))
    sq_sums = np.zeros((K, D)) if squares else None
    total_dist = 0.0
    far = FarthestRows(n_far) if n_far else None
    centred_buf, scores_buf = _buffers(N, D, K, coef.minus_two_centred_t.dtype, block_rows)
    augmented = _augmented(coef)
    screen = _screen(coef, augmented, len(centred_buf))
    onehot = None
    for start in range(0, N, block_rows):
        stop = min(start + block_rows, N)
        block = X[start:stop]
        labels, min_dist, diff = _assign_block(block, coef, centred_buf, scores_buf, with_diff=True,
                                               augmented=augmented, screen=screen)
        counts += np.bincount(labels, minlength=K)
        onehot = _one_hot(labels, K, onehot)
        s, s2 = cluster_sums(diff, labels, K, squares=squares, onehot=onehot)
        sums += s
        if squares:
            sq_sums += s2
        total_dist += float(min_dist.sum())
        if far is not None:
            far.add(start, min_dist)
        if on_rows is not None:
            on_rows(stop - start)
    far_points, far_dists = far.result(X) if far is not None else (np.empty((0, D)), np.empty(0))
    return {"counts": counts, "sums": sums, "sum_min_dist": total_dist, "sq_sums": sq_sums,
            "far_points": far_points, "far_dists": far_dists}


def squared_distances(X, centroids, block_rows: int = 8192):
    """Exact squared Euclidean distances, shape (K, N) (clusters first, as the reference)."""
    X = np.asarray(X)
    out = np.empty((centroids.shape[0], X.shape[0]), dtype=np.float64)
    for start in range(0, X.shape[0], block_rows):
        stop = min(start + block_rows, X.shape[0])
        out[:, start:stop] = cdist(centroids, X[start:stop], "sqeuclidean")
    return out
