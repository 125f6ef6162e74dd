"""Statistics of the numerical edge cases (tests/*/test_numerical_edges_*.py): plain numpy, so
that tests/data/edges/make_fixtures.py gives the reference the same arrays."""

from __future__ import annotations

import numpy as np

C, D = 3, 2


def edge_ubm_arrays():
    """``(means, variances, weights)`` of the UBM of the edge cases: C = 3 Gaussians in D = 2."""
    rng = np.random.default_rng(5)
    return rng.normal(0, 1.5, (C, D)), rng.uniform(0.5, 2, (C, D)), np.array([0.3, 0.3, 0.4])


def edge_statistics(n_sessions: int, seed: int, unit: float = 1.0):
    """``(n, sum_px, sum_pxx)`` of ``n_sessions`` sessions near the UBM, counts multiplied by
    ``unit`` (so 1e300 gives statistics whose sums reach about 5e301)."""
    means, variances, _ = edge_ubm_arrays()
    rng = np.random.default_rng(seed)
    n = rng.gamma(2, 10, (n_sessions, C))
    mu = means + rng.normal(0, 0.5, (n_sessions, 1, D))
    sum_pxx = n[..., None] * (mu**2 + variances * rng.uniform(0.7, 1.3, (n_sessions, 1, D)))
    return n * unit, n[..., None] * mu * unit, sum_pxx * unit
