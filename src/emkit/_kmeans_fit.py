"""What :meth:`emkit.kmeans.KMeansMachine.fit` makes of a pass's statistics: the new centroids
(empty clusters re-seeded), the rounding error of the convergence test, and the advice of its
not-converged warning.  No estimator state lives here."""

from __future__ import annotations

import logging

import numpy as np

from ._kmeans_stats import KMeansStats

logger = logging.getLogger("emkit")

#: GMMMachine's default k-means start warns too, where the user set no k-means parameter
NOT_CONVERGED_ADVICE = ("raise max_iter or convergence_threshold (GMMMachine's k-means start: "
                        "pass k_means_trainer=KMeansMachine(n_gaussians, max_iter=...))")


def reseeded_centroids(stats: KMeansStats) -> np.ndarray:
    """The cluster means (K, D) of a pass; a cluster that received no sample is moved onto the
    sample farthest from its centroid (the next farthest for the next empty cluster...)."""
    centroids = stats.centroids()
    empty = np.flatnonzero(stats.counts == 0)
    if len(empty):
        logger.info("k-means: re-seeding %d empty cluster(s) with the farthest samples", len(empty))
        far = stats.far_points
        for j, k in enumerate(empty):
            centroids[k] = far[j % len(far)]
    return centroids


def distance_rounding(centroids) -> float:
    """The rounding error of ``average_min_distance`` when every sample is on its centroid: a
    centroid's coordinates pass through about four roundings of magnitude ``max|c|`` (shift,
    offset, mean deviation; doubled here), and a distance sums D squares of them.  (With
    centroids not yet read back from a device, those of the start: the same magnitude.)"""
    scale = 0.0 if centroids is None else float(np.max(np.abs(centroids)))
    return centroids.shape[1] * (8.0 * np.finfo(np.float64).eps * scale) ** 2 if scale else 0.0
