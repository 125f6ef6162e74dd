"""Reference numbers for tests/*/test_numerical_edges_*.py, made with bob.learn.em 3.3.1.

Run with the reference's interpreter: it prints the i-vector literals pasted into
tests/ivector/test_numerical_edges_ivector.py and writes ``ivector.npz`` and
``factor_analysis.npz`` next to this file::

    /work/refenv/bin/python tests/data/edges/make_fixtures.py

The statistics come from tests/support/edge_cases.py, which the tests use too.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "support"))
from edge_cases import (C, D, FA_CASES, edge_statistics, edge_ubm_arrays,  # noqa: E402
                        fa_case, fa_initial_values, IV_CASES, iv_case)

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
    out = {}
    probes = stats(edge_statistics(2, 9))
    for case in IV_CASES:
        arrays, dtype = iv_case(case)
        for R in (2, 5):
            for update_sigma in (True, False):
                machine = IVectorMachine(ubm, dim_t=R, max_iterations=4, update_sigma=update_sigma)
                np.random.seed(3)
                train = stats(arrays)
                for s in train:
                    s.n, s.sum_px, s.sum_pxx = (a.astype(dtype) for a in (s.n, s.sum_px, s.sum_pxx))
                machine.fit(train)
                p = f"{case}_R{R}_sigma{int(update_sigma)}_"
                out[p + "T"], out[p + "sigma"] = machine.T, machine.sigma
                out[p + "ivectors"] = np.array([machine.project(s) for s in probes])
    np.savez_compressed(pathlib.Path(__file__).parent / "ivector.npz", **out)


def _reference_factor_analysis():
    from bob.learn.em import GMMMachine, GMMStats, ISVMachine, JFAMachine

    means, variances, weights = edge_ubm_arrays()
    ubm = GMMMachine(C)
    ubm.means, ubm.variances, ubm.weights = means, variances, weights

    def stats(arrays, dtype=np.float64):
        out = []
        for n, f, ff in zip(*arrays):
            s = GMMStats(C, D)
            s.n, s.sum_px, s.sum_pxx = n.astype(dtype), f.astype(dtype), ff.astype(dtype)
            s.t, s.log_likelihood = 1, 0.0
            out.append(s)
        return out

    init = fa_initial_values()
    enrol, probes = stats(edge_statistics(2, 7)), stats(edge_statistics(2, 8))
    out = dict(init)
    for case in FA_CASES:
        arrays, labels, dtype = fa_case(case)
        for kind in ("isv", "jfa", "isv5"):
            if kind == "jfa":
                m = JFAMachine(2, 2, em_iterations=3, relevance_factor=4.0, ubm=ubm)
                m.U, m.V, m.D = init["U0"].copy(), init["V0"].copy(), init["D0"].copy()
            else:
                m = ISVMachine(5 if kind == "isv5" else 2, em_iterations=3, relevance_factor=4.0, ubm=ubm)
                m.U, m.D = init["U5" if kind == "isv5" else "U0"].copy(), init["D0"].copy()
            p = f"{case}_{kind}_"
            try:
                m.fit(stats(arrays, dtype), list(labels))
            except np.linalg.LinAlgError as e:  # no reference numbers for this case
                out[p + "error"] = np.array(str(e))
                continue
            out[p + "U"], out[p + "D"] = m.U, m.D
            if kind == "jfa":
                out[p + "V"] = m.V
            out[p + "score"] = np.float64(m.score(m.enroll(enrol), probes))
    np.savez_compressed(pathlib.Path(__file__).parent / "factor_analysis.npz", **out)


if __name__ == "__main__":
    _reference_ivectors()
    _reference_factor_analysis()
