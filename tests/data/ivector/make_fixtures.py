"""Make the i-vector, WCCN and Whitening fixtures with bob.learn.em 3.3.1 (the numerical oracle).

Run with the reference interpreter from this directory's parent repository:

    /work/refenv/venv/bin/python tests/data/ivector/make_fixtures.py

Writes ``ivector.npz`` and ``linear.npz`` next to this script.  Statistics are computed by the
reference from frames drawn from a GMM whose means move along a random low-rank subspace per
utterance, so the total variability model has something to find.
"""

import pathlib

import numpy as np
from bob.learn.em import WCCN, GMMMachine, IVectorMachine, Whitening
from bob.learn.em import ivector as ref_ivector

HERE = pathlib.Path(__file__).parent

#: name: (C, D, R, train utterances, test utterances, iterations, update_sigma, seed)
IVECTOR_SETS = {
    "small": (4, 3, 2, 20, 5, 5, True, 0),
    "nosigma": (8, 5, 4, 40, 6, 4, False, 1),
    "wide": (16, 6, 10, 30, 6, 8, True, 2),
}


def make_ubm(C, D, rng):
    ubm = GMMMachine(C)
    ubm.means = rng.normal(0.0, 3.0, (C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = rng.dirichlet(np.full(C, 5.0))
    return ubm


def make_frames(ubm, T_true, n_utt, rng):
    C, D = ubm.means.shape
    out = []
    for _ in range(n_utt):
        w = rng.normal(size=T_true.shape[-1])
        means = ubm.means + T_true @ w
        n_frames = int(rng.integers(20, 120))
        comp = rng.choice(C, size=n_frames, p=ubm.weights)
        out.append(means[comp] + rng.normal(size=(n_frames, D)) * np.sqrt(ubm.variances[comp]))
    return out


def stats_arrays(stats, prefix):
    return {
        f"{prefix}_n": np.array([s.n for s in stats]),
        f"{prefix}_sum_px": np.array([s.sum_px for s in stats]),
        f"{prefix}_sum_pxx": np.array([s.sum_pxx for s in stats]),
        f"{prefix}_t": np.array([s.t for s in stats]),
        f"{prefix}_log_likelihood": np.array([s.log_likelihood for s in stats]),
    }


def ivector_fixtures():
    out = {}
    for name, (C, D, R, n_train, n_test, iters, update_sigma, seed) in IVECTOR_SETS.items():
        rng = np.random.default_rng(100 + seed)
        ubm = make_ubm(C, D, rng)
        T_true = rng.normal(0.0, 0.7, (C, D, min(R, 3)))
        train = ubm.transform(make_frames(ubm, T_true, n_train, rng))
        test = ubm.transform(make_frames(ubm, T_true, n_test, rng))
        p = f"{name}_"
        out.update({p + "ubm_means": ubm.means, p + "ubm_variances": ubm.variances,
                    p + "ubm_weights": ubm.weights,
                    p + "config": np.array([C, D, R, iters, int(update_sigma), seed])})
        out.update(stats_arrays(train, p + "train"))
        out.update(stats_arrays(test, p + "test"))

        np.random.seed(seed)
        out[p + "T0"] = np.random.normal(0.0, 1.0, (C, D, R))

        # one E-step from the initial parameters (T0, UBM variances)
        machine = IVectorMachine(ubm, dim_t=R, max_iterations=iters, update_sigma=update_sigma)
        machine.dim_c, machine.dim_d = C, D
        machine.T, machine.sigma = out[p + "T0"].copy(), ubm.variances.copy()
        acc = ref_ivector.e_step(machine, train)
        out[p + "estep_nij_sigma_wij2"] = acc.nij_sigma_wij2
        out[p + "estep_fnorm_sigma_wij"] = acc.fnorm_sigma_wij
        out[p + "estep_snormij"] = acc.snormij
        out[p + "estep_nij"] = acc.nij
        ref_ivector.m_step(machine, acc)
        out[p + "mstep1_T"], out[p + "mstep1_sigma"] = machine.T, machine.sigma

        # helpers on the first training utterance, with T0 and the UBM variances
        T0, var = out[p + "T0"], ubm.variances
        out[p + "h_tct_sigmac_inv"] = ref_ivector.compute_tct_sigmac_inv(T0, var)
        out[p + "h_tct_sigmac_inv_tc"] = ref_ivector.compute_tct_sigmac_inv_tc(T0, var)
        out[p + "h_id_tt_sigma_inv_t"] = ref_ivector.compute_id_tt_sigma_inv_t(train[0], T0, var)
        out[p + "h_tt_sigma_inv_fnorm"] = ref_ivector.compute_tt_sigma_inv_fnorm(ubm.means, train[0], T0, var)

        # full training from the global RNG seeded as the reference's tests do
        machine = IVectorMachine(ubm, dim_t=R, max_iterations=iters, update_sigma=update_sigma)
        np.random.seed(seed)
        machine.fit(train)
        out[p + "T"], out[p + "sigma"] = machine.T, machine.sigma
        out[p + "ivectors_train"] = np.array(machine.transform(train))
        out[p + "ivectors_test"] = np.array([machine.project(s) for s in test])
    return out


def linear_fixtures():
    out = {}
    rng = np.random.default_rng(7)
    # the reference's own 6 x 3 WCCN example
    X = np.array([[1.2622, -1.6443, 0.1889], [0.4286, -0.8922, 1.3020], [-0.6613, 0.0430, 0.6377],
                  [-0.8718, -0.4788, 0.3988], [-0.0098, -0.3121, -0.1807], [0.4301, 0.4886, -0.1456]])
    sets = {"doc": (X, np.array([0, 0, 1, 1, 2, 2]))}
    A = rng.normal(size=(5, 5))
    labels = rng.permutation(np.repeat(np.arange(4), 15))
    sets["rand"] = (rng.normal(size=(60, 5)) @ A + 3.0 * labels[:, None], labels)
    for name, (X, y) in sets.items():
        out[f"wccn_{name}_X"], out[f"wccn_{name}_y"] = X, y
        for pinv in (False, True):
            m = WCCN(pinv=pinv).fit(X, y)
            out[f"wccn_{name}_pinv{int(pinv)}_weights"] = np.asarray(m.weights)
            out[f"wccn_{name}_pinv{int(pinv)}_out"] = np.array(m.transform(X))
    for name, (N, D) in {"a": (50, 4), "b": (200, 7)}.items():
        X = rng.normal(size=(N, D)) @ rng.normal(size=(D, D)) + rng.normal(0, 5, D)
        out[f"white_{name}_X"] = X
        for pinv in (False, True):
            m = Whitening(pinv=pinv).fit(X)
            out[f"white_{name}_pinv{int(pinv)}_weights"] = np.asarray(m.weights)
            out[f"white_{name}_pinv{int(pinv)}_subtract"] = np.asarray(m.input_subtract)
            out[f"white_{name}_pinv{int(pinv)}_out"] = np.asarray(m.transform(X))
    return out


if __name__ == "__main__":
    np.savez_compressed(HERE / "ivector.npz", **ivector_fixtures())
    np.savez_compressed(HERE / "linear.npz", **linear_fixtures())
    print("wrote", HERE / "ivector.npz", "and", HERE / "linear.npz")
