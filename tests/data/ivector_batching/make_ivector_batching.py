"""Make ``before.npz``: T, sigma and i-vectors of a small i-vector fit by emkit BEFORE the change of
the E-step's batching (commit b896975), to check that later batching gives the same numbers.

    PYTHONPATH=<checkout of b896975>/src python tests/data/ivector_batching/make_ivector_batching.py
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parents[2]))
from _ivector_batching import problem  # noqa: E402

from emkit import IVectorMachine  # noqa: E402

if __name__ == "__main__":
    ubm, stats, cfg = problem()
    machine = IVectorMachine(ubm, **cfg).fit(stats)
    np.savez(pathlib.Path(__file__).with_name("before.npz"), T=machine.T, sigma=machine.sigma,
             ivectors=machine.transform(stats))
