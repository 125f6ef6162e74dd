"""The small i-vector problem of tests/test_ivector_batching.py (shared with the script that made
its fixture): R = 40 > the triangular kernels' leaf size, utterances of very different lengths."""

import numpy as np

from emkit import GMMMachine, GMMStats


def problem(C=8, D=3, R=40, S=37, seed=5):
    rng = np.random.RandomState(seed)
    ubm = GMMMachine(C)
    ubm.means = rng.normal(0.0, 2.0, (C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    stats = []
    for s in range(S):
        n = rng.gamma(1.0, 3.0 * (1 + s % 7), C)
        offset = rng.normal(0.0, 0.7, (C, D))
        st = GMMStats(C, D)
        st.init_fields(0.0, float(n.sum()), n, n[:, None] * (ubm.means + offset),
                       n[:, None] * ((ubm.means + offset) ** 2 + ubm.variances))
        stats.append(st)
    return ubm, stats, dict(dim_t=R, max_iterations=3, random_state=seed)
