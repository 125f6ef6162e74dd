"""Problems on which float32 statistics lose digits to the variances' cancellation."""

from __future__ import annotations

import numpy as np


def tight_clusters(seed, C=24, D=20, N=40_000):
    """``(X float32 (N, D), means, variances, weights)``: frames of C tight Gaussians spread far
    about the mean of the means (kappa 500-1300), and parameters near them.  The posteriors are
    hard, so float32 log-likelihoods barely matter and the statistics product's rounding,
    multiplied by kappa in the variances, is what shows."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(C, D)) * 3.0
    sd = rng.uniform(0.2, 0.6, size=(C, D))
    component = rng.integers(0, C, N)
    X = (means[component] + rng.normal(size=(N, D)) * sd[component]).astype(np.float32)
    return X, means + 0.05 * rng.normal(size=(C, D)), sd**2 * 1.1, np.full(C, 1 / C)


def variance_error(stats32, stats64, means, variances):
    """Largest relative difference of the variances of two ``(n, px, pxx)`` moments about the
    mean of the means, divided by ``1 + kappa``."""
    def var(n, px, pxx):
        return pxx / n[:, None] - (px / n[:, None]) ** 2

    kappa = np.max((means - means.mean(axis=0)) ** 2 / variances)
    return np.max(np.abs(var(*stats32) / var(*stats64) - 1)) / (1 + kappa)
