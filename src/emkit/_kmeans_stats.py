"""Additive statistics of a k-means pass (one Lloyd E-step), the chunk functions computing them
and the nearest centroids, and the per-cluster variances and weights made from them."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _device_infer
from ._backend import is_dask_collection, map_reduce_finite
from ._config import get_config
from ._progress import Progress
from ._kernels import kmeans as kk
from ._validation import check_block


def block_rows() -> int:
    """Rows per block of the k-means kernels: the config's ``block_rows``, else the kernels'."""
    return get_config()["block_rows"] or kk.DEFAULT_BLOCK_ROWS


@dataclass
class KMeansStats:
    """Per-cluster counts and sums, total squared distance, and the farthest points seen.

    Sums are of the deviations ``x - c_k`` from the centroids ``c = coef.shift + coef.centred``
    of the E-step (and of their squares), so that :meth:`centroids` and :meth:`variances` keep
    their precision far from the origin.  The farthest points (at most K rows with their squared
    distances to the nearest centroid) let an empty cluster be re-seeded without another pass.
    """

    counts: np.ndarray  # (K,) int64
    sums: np.ndarray  # (K, D) sums of x - c_k
    sum_min_dist: float
    n_samples: int
    sq_sums: np.ndarray | None  # (K, D) sums of (x - c_k)**2, or None
    far_points: np.ndarray  # (m, D) float64
    far_dists: np.ndarray  # (m,)
    coef: kk.CentroidCoefficients  # the centroids the deviations are measured from

    def __add__(self, other: "KMeansStats") -> "KMeansStats":
        points = np.concatenate([self.far_points, other.far_points])
        dists = np.concatenate([self.far_dists, other.far_dists])
        keep = kk.top_indices(dists, len(self.counts))
        return KMeansStats(
            counts=self.counts + other.counts,
            sums=self.sums + other.sums,
            sum_min_dist=self.sum_min_dist + other.sum_min_dist,
            n_samples=self.n_samples + other.n_samples,
            sq_sums=None if self.sq_sums is None else self.sq_sums + other.sq_sums,
            far_points=points[keep],
            far_dists=dists[keep],
            coef=self.coef,
        )

    def offsets(self) -> np.ndarray:
        """Cluster means minus ``coef.shift`` (K, D); rows of empty clusters are the centroids'."""
        return self.coef.centred + self.sums / np.maximum(self.counts, 1)[:, None]

    def centroids(self) -> np.ndarray:
        """The cluster means (K, D) (the centroids themselves for empty clusters)."""
        return self.coef.shift + self.offsets()

    def variances(self) -> np.ndarray:
        """Biased per-cluster variances (K, D) about the cluster means; 0 for empty clusters."""
        safe = np.maximum(self.counts, 1)[:, None]
        delta = self.sums / safe
        return np.maximum(self.sq_sums / safe - delta * delta, 0.0)

    def total_variance(self) -> np.ndarray:
        """Biased variance (D,) of all the samples (within- plus between-cluster parts)."""
        n = self.counts[:, None]
        offsets = self.offsets()
        mean = (n * offsets).sum(0) / self.n_samples
        within = self.sq_sums - n * (self.sums / np.maximum(n, 1)) ** 2
        return (within.sum(0) + (n * (offsets - mean) ** 2).sum(0)) / self.n_samples


def lloyd_pass(X, coef: kk.CentroidCoefficients, squares: bool, what: str) -> KMeansStats:
    """:func:`kmeans_chunk_stats` of every row of checked ``X`` summed by the backend's
    ``map_reduce_finite``, its rows counted (:func:`rows_counted`, named ``what``)."""
    return rows_counted(what, map_reduce_finite, kmeans_chunk_stats, X, coef, block_rows(),
                        squares)


def rows_counted(what: str, reduce, chunk_fn, X, *params, **options):
    """``reduce(chunk_fn, X, *params, **options)`` (the backend's ``map_reduce`` or
    ``map_reduce_finite``), the ``emkit`` logger saying how far it is (``what``: rows done of
    all, INFO, at most every 30 s): numpy rows block by block, by ``chunk_fn(..., on_rows=n)``
    once per block of the kernels, the chunks of a dask array as they finish (on a local
    scheduler or a ``distributed`` client)."""
    n = X.shape[0]
    progress = Progress(what, int(n) if np.isfinite(n) else None, "row")
    if is_dask_collection(X):
        return reduce(chunk_fn, X, *params, progress=progress, **options)
    return reduce(functools.partial(chunk_fn, on_rows=progress.advance), X, *params, **options)


def kmeans_chunk_stats(X, coef: kk.CentroidCoefficients, block_rows: int,
                       squares: bool, on_rows=None) -> KMeansStats:
    """Chunk function for :func:`emkit._backend.map_reduce_finite` (which refuses NaN/inf first);
    on the device configured in the process where it runs, if any (a dask worker's own).
    ``on_rows(n)`` (optional) counts the rows of each block done."""
    X = np.asarray(X)
    dev = _device_infer.device()
    if dev is not None and X.shape[0]:
        stats = _device_infer.kmeans_chunk(X, coef, squares, dev)
        if on_rows is not None:
            on_rows(X.shape[0])
        return stats
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing squares: refused by the callers
        r = kk.lloyd_statistics(X, coef, block_rows, squares=squares, n_far=coef.n_clusters,
                                on_rows=on_rows)
    return KMeansStats(r["counts"], r["sums"], r["sum_min_dist"], X.shape[0], r["sq_sums"],
                       r["far_points"], r["far_dists"], coef)


def predict_block(block, coef: kk.CentroidCoefficients, rows: int, block_info=None) -> np.ndarray:
    """The nearest centroid of every row of one dask chunk, ``rows`` at a time (the caller's
    ``block_rows``: a worker process has its own settings); NaN/inf in the chunk are refused."""
    block = np.asarray(block)
    check_block(block, "X", block_info)
    return kk.assign(block, coef, rows)[0]


def variances_and_weights(stats: KMeansStats) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster biased variances (K, D) and weights (K,) of a pass with ``squares``; an empty
    cluster gets weight 0 and the variance of the whole data."""
    counts = stats.counts
    weights = counts / counts.sum()
    with np.errstate(over="ignore", invalid="ignore"):
        variances = stats.variances()
    if not np.isfinite(variances).all():  # (NaN: inf - inf)
        raise ValueError("data: the squared deviations from the centroids overflow float64 "
                         "(|x - centroid| above about 1e154): rescale the data")
    empty = counts == 0
    if empty.any():
        variances[empty] = stats.total_variance()
    return variances, weights
