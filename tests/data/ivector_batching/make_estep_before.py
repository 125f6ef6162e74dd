"""Make ``estep_before.npz``: the i-vector E-step statistics (``emkit.ivector.e_step``) of the small
problem of tests/_ivector_batching.py under the T and sigma of ``before.npz``, computed by emkit
BEFORE the statistics were stacked through ``GMMStats.stack`` (commit 810388c), to check that the
stacking gives the same statistics.

    PYTHONPATH=<checkout of 810388c>/src python tests/data/ivector_batching/make_estep_before.py
"""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parents[2]))
from _ivector_batching import problem  # noqa: E402

from emkit.ivector import IVectorMachine, e_step  # noqa: E402

FIELDS = ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood", "n_sessions")

if __name__ == "__main__":
    here = pathlib.Path(__file__)
    before = np.load(here.with_name("before.npz"))
    ubm, stats, cfg = problem()
    machine = IVectorMachine(ubm, **cfg)
    machine.T, machine.sigma = before["T"], before["sigma"]
    acc = e_step(machine, stats)
    np.savez(here.with_name("estep_before.npz"), **{f: np.asarray(getattr(acc, f)) for f in FIELDS})
