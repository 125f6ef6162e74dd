"""Make ``initial_values.npz``: U, V and D of freshly constructed ISV/JFA machines of the reference.

Run with the reference's interpreter (bob.learn.em 3.3.1)::

    /work/refenv/venv/bin/python tests/data/factor_analysis/make_initial_values.py

bob.learn.em sets U, V (JFA) and D in the constructor when the UBM is trained: U then V drawn
with ``np.random.seed(random_state)`` + ``np.random.normal``, and
``D = sqrt(variance_supervector / relevance_factor)``.  With ``random_state=None`` it does not
seed and draws from numpy's global generator as it stands (here: after ``np.random.seed(s)``).
Also stored: ``estimate_x`` of a probe and the ISV enrol+score of a client, both on the
unfitted machines (which the reference allows).
"""

from pathlib import Path

import numpy as np
from bob.learn.em import GMMMachine, GMMStats, ISVMachine, JFAMachine

C, D, R_U, R_V, RELEVANCE = 3, 2, 2, 3, 4.0
SEEDS = (0, 1, 42)
NONE_SEED = 7  # np.random.seed(NONE_SEED) before constructing with random_state=None


def main():
    rng = np.random.RandomState(2024)
    means = rng.normal(size=(C, D)) * 3
    variances = rng.uniform(0.5, 2.0, size=(C, D))
    weights = np.full(C, 1.0 / C)
    ubm = GMMMachine(C)
    ubm.means, ubm.variances, ubm.weights = means, variances, weights

    def stats(n_frames):
        X = rng.normal(size=(n_frames, D)) * 2
        return ubm.acc_stats(X)

    probe, enrol = stats(20), [stats(15), stats(25)]
    out = dict(means=means, variances=variances, weights=weights, relevance=RELEVANCE,
               r=np.array([R_U, R_V]), seeds=np.array(SEEDS), none_seed=NONE_SEED)
    for name, s in [("probe", probe), ("enrol0", enrol[0]), ("enrol1", enrol[1])]:
        out[name + "_n"], out[name + "_sum_px"] = s.n, s.sum_px
        out[name + "_sum_pxx"], out[name + "_t"] = s.sum_pxx, s.t
    for seed in SEEDS + (None,):
        tag = "none" if seed is None else str(seed)
        if seed is None:
            np.random.seed(NONE_SEED)
        isv = ISVMachine(R_U, relevance_factor=RELEVANCE, random_state=seed, ubm=ubm)
        out[f"isv_{tag}_U"], out[f"isv_{tag}_D"] = np.array(isv.U), np.array(isv.D)
        out[f"isv_{tag}_x"] = isv.estimate_x([probe])
        out[f"isv_{tag}_score"] = isv.score(isv.enroll(enrol), [probe])
        if seed is None:
            np.random.seed(NONE_SEED)
        jfa = JFAMachine(R_U, R_V, relevance_factor=RELEVANCE, random_state=seed, ubm=ubm)
        out[f"jfa_{tag}_U"], out[f"jfa_{tag}_V"] = np.array(jfa.U), np.array(jfa.V)
        out[f"jfa_{tag}_D"] = np.array(jfa.D)
        out[f"jfa_{tag}_x"] = jfa.estimate_x([probe])
    np.savez(Path(__file__).with_name("initial_values.npz"), **out)


if __name__ == "__main__":
    main()
