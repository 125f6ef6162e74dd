"""Fixtures for the ISV/JFA parity tests, made with bob.learn.em 3.3.1.

Run with the reference's interpreter (it writes ``case_*.npz`` next to this file)::

    /work/refenv/venv/bin/python tests/data/factor_analysis/make_fixtures.py

The reference is only a numerical oracle.  For every case the UBM (means, variances, weights) is
drawn here and set identically in both libraries, per-session statistics are computed by the
reference and stored (``n``, ``sum_px``, ``sum_pxx``, ``t``), so that the tests build identical
``GMMStats``.  Sessions of the classes are interleaved (the labels are not sorted) and classes
have uneven numbers of sessions.

Stored per case (prefix ``isv_``/``jfa_``): the initial subspaces drawn from ``random_state``
(``U0``, ``V0``), the trained ``U``, ``V``, ``D`` (from ``random_state`` and from explicit initial
parameters ``*_init``), enrolment latents (1 and 3 enrol iterations), estimated probe factors and
scores of a one-session and a three-session probe, and the outputs of the public step methods.

One deliberate change: JFA enrolment with more than one iteration is also run with the y
posterior centred on ``m + D z`` (COMPATIBILITY item 4; the reference has ``m - D z``).  For that
run the reference's per-class y statistics method is replaced by :func:`_fixed_fn_y_i` below; the
unpatched values are stored too (``*_bug``) to show that the two differ.
"""

from __future__ import annotations

import pathlib

import numpy as np
from bob.learn.em import GMMMachine, ISVMachine, JFAMachine
from bob.learn.em.factor_analysis import FactorAnalysisBase

HERE = pathlib.Path(__file__).parent

CASES = {
    # name: (seed, C, D, sessions per class, frames (low, high), r_U, r_V, em_iterations,
    #        random_state, relevance_factor)
    "small": (1, 4, 3, [3, 1, 4, 2], (20, 60), 2, 2, 3, 0, 4.0),
    "tiny": (2, 1, 1, [2, 1, 3], (5, 15), 1, 1, 2, 5, 4.0),
    "rank1": (3, 3, 2, [2, 3, 1, 2, 2], (10, 40), 1, 1, 3, 3, 2.0),
    "medium": (4, 8, 5, [1, 2, 3, 4, 2, 5], (30, 120), 3, 2, 4, 42, 3.0),
}


def _fixed_fn_y_i(self, X_i, latent_x_i, latent_z_i, n_acc_i, f_acc_i):
    """Class statistics for y centred on ``m + D z_i + U x_h`` (the corrected sign)."""
    n_sv = np.repeat(n_acc_i, self.feature_dimension)
    out = f_acc_i.flatten() - n_sv * (self.mean_supervector + self._D * latent_z_i)
    for h, stats in enumerate(X_i):
        out = out - np.repeat(stats.n, self.feature_dimension) * (self._U @ latent_x_i[:, h])
    return out


def make_ubm(means, variances, weights):
    ubm = GMMMachine(n_gaussians=means.shape[0])
    ubm.means = means.copy()
    ubm.variances = variances.copy()
    ubm.weights = weights.copy()
    return ubm


def draw_frames(rng, means, variances, weights, n_frames, shift):
    comp = rng.choice(len(weights), size=n_frames, p=weights)
    noise = rng.normal(size=(n_frames, means.shape[1])) * np.sqrt(variances[comp])
    return means[comp] + shift + noise


def stats_arrays(stats, prefix):
    return {
        f"{prefix}n": np.array([s.n for s in stats]),
        f"{prefix}sum_px": np.array([s.sum_px for s in stats]),
        f"{prefix}sum_pxx": np.array([s.sum_pxx for s in stats]),
        f"{prefix}t": np.array([s.t for s in stats]),
        f"{prefix}ll": np.array([s.log_likelihood for s in stats]),
    }


def latent_x_flat(latent_x):
    return np.concatenate([np.asarray(lx).T for lx in latent_x], axis=0)


def make_case(
    name, seed, C, D, sessions, frame_range, r_U, r_V, em_iterations, random_state, relevance
):
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 1.5, size=(C, D))
    variances = rng.uniform(0.5, 2.0, size=(C, D))
    weights = rng.dirichlet(np.ones(C) * 5)
    ubm = make_ubm(means, variances, weights)

    labels, frames = [], []
    for k, n_sessions in enumerate(sessions):
        class_shift = rng.normal(0.0, 0.6, size=D)
        for _ in range(n_sessions):
            T = int(rng.integers(*frame_range))
            frames.append(
                draw_frames(rng, means, variances, weights, T, class_shift + rng.normal(0, 0.3, D))
            )
            labels.append(k)
    order = rng.permutation(len(labels))  # interleave the classes
    labels = [labels[i] for i in order]
    frames = [frames[i] for i in order]
    stats = ubm.transform(frames)

    enroll_shift = rng.normal(0.0, 0.6, size=D)
    enroll_frames = [
        draw_frames(
            rng,
            means,
            variances,
            weights,
            int(rng.integers(*frame_range)),
            enroll_shift + rng.normal(0, 0.3, D),
        )
        for _ in range(2)
    ]
    probe_frames = [
        draw_frames(
            rng,
            means,
            variances,
            weights,
            int(rng.integers(*frame_range)),
            enroll_shift + rng.normal(0, 0.3, D),
        )
        for _ in range(3)
    ]
    enroll_stats = ubm.transform(enroll_frames)
    probe_stats = ubm.transform(probe_frames)

    CD = C * D
    out = dict(
        means=means,
        variances=variances,
        weights=weights,
        labels=np.array(labels),
        params=np.array([r_U, r_V, em_iterations, random_state]),
        relevance=relevance,
    )
    out.update(stats_arrays(stats, ""))
    out.update(stats_arrays(enroll_stats, "enroll_"))
    out.update(stats_arrays(probe_stats, "probe_"))
    out["frames"] = np.concatenate(frames)
    out["frame_counts"] = np.array([len(f) for f in frames])
    n_per_class = [sum(1 for label in labels if label == k) for k in range(len(sessions))]
    K = len(sessions)

    # ---------------- ISV ----------------
    for init in ("rs", "explicit"):
        isv = ISVMachine(
            r_U,
            em_iterations=em_iterations,
            relevance_factor=relevance,
            random_state=random_state,
            ubm=ubm,
        )
        p = f"isv_{init}_"
        if init == "rs":
            out["isv_U0"] = isv.U.copy()
        else:
            out[p + "U_init"] = rng.normal(size=(CD, r_U))
            out[p + "D_init"] = rng.uniform(0.2, 1.0, size=CD)
            isv.U, isv.D = out[p + "U_init"].copy(), out[p + "D_init"].copy()
        # the public step API, one E-step from the initial U
        n_acc, f_acc = isv.initialize(stats, labels, K)
        out[p + "n_acc"], out[p + "f_acc"] = n_acc, f_acc
        A1, A2 = isv.e_step(stats, labels, n_per_class, n_acc, f_acc)
        out[p + "estep_A1"], out[p + "estep_A2"] = A1, A2
        isv.fit(stats, labels)
        out[p + "U"], out[p + "D"] = isv.U.copy(), isv.D.copy()
        z1 = isv.enroll(enroll_stats)
        isv.enroll_iterations = 3
        z3 = isv.enroll(enroll_stats)
        out[p + "z1"], out[p + "z3"] = z1, z3
        out[p + "x_probe1"] = isv.estimate_x(probe_stats[:1])
        out[p + "x_probe3"] = isv.estimate_x(probe_stats)
        out[p + "scores"] = np.array(
            [
                isv.score(z1, probe_stats[:1]),
                isv.score(z1, probe_stats),
                isv.score(z3, probe_stats[:1]),
                isv.score(z3[0], probe_stats),
            ]
        )

    # ---------------- JFA ----------------
    for init in ("rs", "explicit"):
        jfa = JFAMachine(
            r_U,
            r_V,
            em_iterations=em_iterations,
            relevance_factor=relevance,
            random_state=random_state,
            ubm=ubm,
        )
        p = f"jfa_{init}_"
        if init == "rs":
            out["jfa_U0"], out["jfa_V0"] = jfa.U.copy(), jfa.V.copy()
        else:
            out[p + "U_init"] = rng.normal(size=(CD, r_U))
            out[p + "V_init"] = rng.normal(size=(CD, r_V))
            out[p + "D_init"] = rng.uniform(0.2, 1.0, size=CD)
            jfa.U, jfa.V, jfa.D = (
                out[p + "U_init"].copy(),
                out[p + "V_init"].copy(),
                out[p + "D_init"].copy(),
            )
        jfa.fit(stats, labels)
        out[p + "U"], out[p + "V"], out[p + "D"] = jfa.U.copy(), jfa.V.copy(), jfa.D.copy()
        y1, z1 = jfa.enroll(enroll_stats)
        out[p + "y1"], out[p + "z1"] = y1, z1
        jfa.enroll_iterations = 3
        out[p + "y3_bug"], out[p + "z3_bug"] = jfa.enroll(enroll_stats)
        original = FactorAnalysisBase._compute_fn_y_i
        FactorAnalysisBase._compute_fn_y_i = _fixed_fn_y_i
        try:
            y3, z3 = jfa.enroll(enroll_stats)
        finally:
            FactorAnalysisBase._compute_fn_y_i = original
        out[p + "y3"], out[p + "z3"] = y3, z3
        out[p + "x_probe3"] = jfa.estimate_x(probe_stats)
        out[p + "scores"] = np.array(
            [
                jfa.score((y1, z1), probe_stats[:1]),
                jfa.score((y1, z1), probe_stats),
                jfa.score((y3, z3), probe_stats[:1]),
            ]
        )
        # the public step API on the trained machine
        n_acc, f_acc = jfa.initialize(stats, labels, K)
        A1, A2 = jfa.e_step_v(stats, labels, n_per_class, n_acc, f_acc)
        out[p + "estep_v_A1"], out[p + "estep_v_A2"] = A1, A2
        latent_y = jfa.finalize_v(stats, labels, n_per_class, n_acc, f_acc)
        out[p + "latent_y"] = np.asarray(latent_y)
        A1, A2 = jfa.e_step_u(stats, labels, n_per_class, latent_y)
        out[p + "estep_u_A1"], out[p + "estep_u_A2"] = A1, A2
        latent_x = jfa.finalize_u(stats, labels, n_per_class, latent_y)
        out[p + "latent_x"] = latent_x_flat(latent_x)
        A1, A2 = jfa.e_step_d(stats, labels, n_per_class, latent_x, latent_y, n_acc, f_acc)
        out[p + "estep_d_A1"], out[p + "estep_d_A2"] = A1, A2

    np.savez(HERE / f"case_{name}.npz", **out)


def make_array_case():
    """``fit_using_array`` / ``enroll_using_array`` / ``score_using_array`` with a trained UBM."""
    rng = np.random.default_rng(11)
    C, D, K, per_class, T = 3, 2, 4, 3, 25
    means = rng.normal(0.0, 1.5, size=(C, D))
    variances = rng.uniform(0.5, 2.0, size=(C, D))
    weights = rng.dirichlet(np.ones(C) * 5)
    X, y = [], []
    for k in range(K):
        shift = rng.normal(0, 0.6, size=D)
        for _ in range(per_class):
            X.append(draw_frames(rng, means, variances, weights, T, shift))
            y.append(k)
    X = np.array(X)  # (sessions, frames, D)
    y = np.array(y)
    enroll = draw_frames(rng, means, variances, weights, 40, 0.3)
    probes = [draw_frames(rng, means, variances, weights, 30, 0.3) for _ in range(2)]
    out = dict(
        means=means,
        variances=variances,
        weights=weights,
        X=X,
        y=y,
        enroll=enroll,
        probes=np.array(probes),
    )
    isv = ISVMachine(2, em_iterations=3, ubm=make_ubm(means, variances, weights))
    isv.fit_using_array(X, y)
    z = isv.enroll_using_array(enroll)
    out.update(isv_U=isv.U, isv_z=z, isv_score=isv.score_using_array(z, probes))
    jfa = JFAMachine(2, 1, em_iterations=3, ubm=make_ubm(means, variances, weights))
    jfa.fit_using_array(X, y)
    model = jfa.enroll_using_array(enroll)
    out.update(
        jfa_U=jfa.U,
        jfa_V=jfa.V,
        jfa_D=jfa.D,
        jfa_y=model[0],
        jfa_z=model[1],
        jfa_score=jfa.score_using_array(model, probes),
    )
    np.savez(HERE / "case_arrays.npz", **out)


if __name__ == "__main__":
    for case_name, spec in CASES.items():
        make_case(case_name, *spec)
        print("wrote", case_name)
    make_array_case()
    print("wrote arrays")
