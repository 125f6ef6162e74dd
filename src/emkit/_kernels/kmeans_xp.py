"""The k-means kernels of :mod:`emkit._kernels.kmeans`, written on the Python array API standard.

Same algebra as the numpy kernels: the nearest centroid from ``||c||^2 - 2 x.c`` (data and
centroids shifted by the centroids' mean) as one matrix product per row block, the exact squared
distance ``sum_d (x_d - c_d)^2`` to the chosen centroid, per-cluster sums of the deviations
``x - c`` (a scatter-add: ``index_add`` / ``cupyx.scatter_add`` / an indicator product, see
:func:`emkit._kernels._xp.segment_sum`).  Runs on numpy, PyTorch, CuPy and ``array-api-strict``
arrays; the estimators use it on a device only (numpy keeps :mod:`emkit._kernels.kmeans`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _xp


@dataclass(frozen=True)
class CentroidArrays:
    """:class:`emkit._kernels.kmeans.CentroidCoefficients` on a namespace's device."""

    shift: object  # (D,) float64
    centred: object  # (K, D) float64
    minus_two_centred_t: object  # (D, K) compute dtype
    sq_norms: object  # (K,) compute dtype

    @classmethod
    def from_centroids(cls, centroids, dtype=None) -> "CentroidArrays":
        """From float64 ``centroids`` (K, D) of any namespace; ``dtype`` of the products
        (default: the centroids')."""
        xp = _xp.namespace(centroids)
        dtype = centroids.dtype if dtype is None else dtype
        shift = xp.mean(centroids, axis=0)
        centred = centroids - shift
        return cls(shift, centred, xp.astype(-2.0 * xp.matrix_transpose(centred), dtype),
                   xp.astype(xp.sum(centred * centred, axis=1), dtype))

    @classmethod
    def from_coefficients(cls, coef, put) -> "CentroidArrays":
        """From numpy :class:`~emkit._kernels.kmeans.CentroidCoefficients` moved by ``put``."""
        return cls(put(coef.shift), put(coef.centred), put(coef.minus_two_centred_t),
                   put(coef.sq_norms))

    @property
    def n_clusters(self) -> int:
        return self.centred.shape[0]


def assign_block(X_block, coef: CentroidArrays, with_diff: bool = False):
    """Nearest centroid of each row (int64), the exact squared distance to it (float64), and
    ``x - c`` (n, D) float64 when ``with_diff``."""
    xp = _xp.namespace(X_block, coef.shift)
    dtype = coef.minus_two_centred_t.dtype
    xc = xp.astype(X_block, xp.float64) - coef.shift
    xc_c = xc if dtype == xp.float64 else xp.astype(xc, dtype)
    scores = xc_c @ coef.minus_two_centred_t + coef.sq_norms
    labels = xp.argmin(scores, axis=1)
    if dtype != xp.float64:
        xc = xp.astype(xc_c, xp.float64)  # numpy measures from the rounded data as well
    diff = xc - xp.take(coef.centred, labels, axis=0)
    min_dist = xp.sum(diff * diff, axis=1)
    return (labels, min_dist, diff) if with_diff else (labels, min_dist)


def assign(X, coef: CentroidArrays, block_rows: int = 2048):
    """Index of the nearest centroid (N,) and the squared distance to it (N,)."""
    xp = _xp.namespace(X, coef.shift)
    labels, dists = [], []
    for i in range(0, X.shape[0], block_rows):
        lab, d = assign_block(X[i:min(i + block_rows, X.shape[0]), ...], coef)
        labels.append(lab)
        dists.append(d)
    if not labels:
        dev = _xp.device_of(coef.shift)
        return (xp.zeros((0,), dtype=xp.int64, device=dev),
                xp.zeros((0,), dtype=xp.float64, device=dev))
    if len(labels) == 1:
        return labels[0], dists[0]
    return xp.concat(labels), xp.concat(dists)


def min_distances(X, coef: CentroidArrays, block_rows: int = 2048):
    """Squared distance of every row to its nearest centroid (N,) float64 (k-means|| scoring)."""
    return assign(X, coef, block_rows)[1]


def top_indices(values, m: int, xp):
    """Indices of the ``m`` largest values, largest first, ties by position."""
    order = xp.argsort(-values, stable=True)
    return order[:min(m, values.shape[0])]


class LloydAccumulator:
    """Statistics of one Lloyd step summed over row blocks, on the device: ``counts`` (K,),
    ``sums`` (K, D) of ``x - c``, ``sq_sums`` or None, ``sum_min_dist`` (0-d) and the ``n_far``
    rows farthest from their centroid (``far_points``, ``far_dists``), all float64."""

    def __init__(self, coef: CentroidArrays, squares: bool = False, n_far: int = 0):
        xp = _xp.namespace(coef.shift)
        dev = _xp.device_of(coef.shift)
        K, D = coef.centred.shape
        self.xp, self.coef, self.squares, self.n_far = xp, coef, squares, n_far
        self.counts = xp.zeros((K,), dtype=xp.float64, device=dev)
        self.sums = xp.zeros((K, D), dtype=xp.float64, device=dev)
        self.sq_sums = xp.zeros((K, D), dtype=xp.float64, device=dev) if squares else None
        self.sum_min_dist = xp.zeros((), dtype=xp.float64, device=dev)
        self.far_points = xp.zeros((0, D), dtype=xp.float64, device=dev)
        self.far_dists = xp.zeros((0,), dtype=xp.float64, device=dev)
        self.n_samples = 0

    def add(self, X_block) -> None:
        xp, coef = self.xp, self.coef
        if X_block.shape[0] == 0:
            return
        K = coef.n_clusters
        labels, min_dist, diff = assign_block(X_block, coef, with_diff=True)
        ones = xp.ones((X_block.shape[0], 1), dtype=xp.float64, device=_xp.device_of(diff))
        parts = [ones, diff] + ([diff * diff] if self.squares else [])
        summed = _xp.segment_sum(labels, xp.concat(parts, axis=1), K, xp)
        D = diff.shape[1]
        self.counts = self.counts + summed[:, 0]
        self.sums = self.sums + summed[:, 1:D + 1]
        if self.squares:
            self.sq_sums = self.sq_sums + summed[:, D + 1:]
        self.sum_min_dist = self.sum_min_dist + xp.sum(min_dist)
        self.n_samples += int(X_block.shape[0])
        if self.n_far:
            local = top_indices(min_dist, self.n_far, xp)
            points = xp.concat([self.far_points,
                                xp.astype(xp.take(X_block, local, axis=0), xp.float64)])
            dists = xp.concat([self.far_dists, xp.take(min_dist, local)])
            keep = top_indices(dists, self.n_far, xp)
            self.far_points, self.far_dists = xp.take(points, keep, axis=0), xp.take(dists, keep)


def lloyd_statistics(X, coef: CentroidArrays, block_rows: int = 2048, *, squares: bool = False,
                     n_far: int = 0) -> LloydAccumulator:
    """:class:`LloydAccumulator` over the rows of ``X`` (one Lloyd E-step)."""
    acc = LloydAccumulator(coef, squares, n_far)
    for i in range(0, X.shape[0], block_rows):
        acc.add(X[i:min(i + block_rows, X.shape[0]), ...])
    return acc
