"""Reference numbers for tests/*/test_numerical_edges_*.py, made with bob.learn.em 3.3.1.

Run with the reference's interpreter (it prints the literals pasted into the tests)::

    /work/refenv/bin/python tests/data/edges/make_fixtures.py

The statistics come from tests/support/edge_cases.py, which the tests use too.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "support"))
from edge_cases import C, D, edge_statistics, edge_ubm_arrays  # noqa: E402

def _reference_ivectors():
    from bob.learn.em import GMMMachine, GMMStats, IVectorMachine

    means, variances, weights = edge_ubm_arrays()
    ubm = GMMMachine(C)
    ubm.means, ubm.variances, ubm.weights = means, variances, weights

    def stats(arrays):
        out = []
        for n, f, ff in zip(*arrays):
            s = GMMStats(C, D)
            s.n, s.sum_px, s.sum_pxx, s.t, s.log_likelihood = n, f, ff, 1, 0.0
            out.append(s)
        return out

    for update_sigma in (True, False):
        machine = IVectorMachine(ubm, dim_t=2, max_iterations=4, update_sigma=update_sigma)
        np.random.seed(3)
        machine.fit(stats(edge_statistics(8, 0, 1e300)))
        probe = stats(edge_statistics(1, 10, 1e300))[0]
        print(f"# update_sigma={update_sigma}")
        print("T =", np.array2string(machine.T.ravel(), precision=17, separator=", "))
        print("sigma =", np.array2string(machine.sigma.ravel(), precision=17, separator=", "))
        print("ivector =", np.array2string(machine.project(probe), precision=17, separator=", "))


if __name__ == "__main__":
    _reference_ivectors()
