"""Additive statistics of a k-means pass (one Lloyd E-step), and the chunk function computing them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import kmeans as kk


@dataclass
class KMeansStats:
    """Per-cluster counts and sums, total squared distance, and the farthest points seen.

    The farthest points (at most K rows with their squared distances to the nearest centroid) let
    an empty cluster be re-seeded without another pass over the data.
    """

    counts: np.ndarray  # (K,) int64
    sums: np.ndarray  # (K, D)
    sum_min_dist: float
    n_samples: int
    sq_sums: np.ndarray | None  # (K, D) or None
    far_points: np.ndarray  # (m, D) float64
    far_dists: np.ndarray  # (m,)

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
        )


def kmeans_chunk_stats(X, coef: kk.CentroidCoefficients, block_rows: int, squares: bool) -> KMeansStats:
    """Chunk function for :func:`emkit._backend.map_reduce`."""
    X = np.asarray(X)
    r = kk.lloyd_statistics(X, coef, block_rows, squares=squares, n_far=coef.n_clusters)
    return KMeansStats(r["counts"], r["sums"], r["sum_min_dist"], X.shape[0], r["sq_sums"],
                       r["far_points"], r["far_dists"])
