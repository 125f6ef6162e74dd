"""Make ``lapack_before.npz``: T, sigma and i-vectors of a small i-vector fit with R = 110 (larger
than the triangular kernels' leaf sizes) by emkit BEFORE the E-step moved from stacked
triangular recursions to per-utterance LAPACK on packed triangles (commit 2bd101d).

    PYTHONPATH=<checkout of 2bd101d>/src python tests/data/ivector_batching/make_lapack_before.py
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "support"))
from _ivector_batching import problem  # noqa: E402

from emkit import IVectorMachine  # noqa: E402

LARGE_R = dict(C=5, D=3, R=110, S=14, seed=8)

if __name__ == "__main__":
    ubm, stats, cfg = problem(**LARGE_R)
    machine = IVectorMachine(ubm, **dict(cfg, max_iterations=2)).fit(stats)
    np.savez(pathlib.Path(__file__).with_name("lapack_before.npz"), T=machine.T,
             sigma=machine.sigma, ivectors=machine.transform(stats))
