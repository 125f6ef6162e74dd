"""ISV and JFA against bob.learn.em 3.3.1 (fixtures of tests/data/factor_analysis/make_fixtures.py).

Every case sets the same UBM in both libraries and trains from the same per-session statistics;
the initial subspaces come from the same ``random_state`` or are given explicitly.
"""

import numpy as np
import pytest
from _parity import DATA, max_rel_diff  # noqa: F401
from factor_analysis_cases import (CASES, FIXTURES, TOL, load_case, machine, make_stats,  # noqa: F401
                                   make_ubm, trained)

from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.gmm import GMMMachine
from emkit.stats import GMMStats

@pytest.mark.parametrize("case", CASES)
def test_initial_subspaces_are_the_reference_draws(case):
    d = load_case(case)
    isv = machine("isv", d, em_iterations=0).fit(make_stats(d), d["labels"])
    assert np.array_equal(isv.U, d["isv_U0"])
    jfa = machine("jfa", d)
    jfa.create_UVD()
    assert np.array_equal(jfa.U, d["jfa_U0"]) and np.array_equal(jfa.V, d["jfa_V0"])
    np.testing.assert_array_equal(jfa.D, np.sqrt(d["variances"].ravel() / float(d["relevance"])))


@pytest.mark.parametrize("init", ["rs", "explicit"])
@pytest.mark.parametrize("case", CASES)
def test_isv_training_enrolment_and_scores(case, init):
    d = load_case(case)
    p = f"isv_{init}_"
    isv = trained("isv", d, init)
    assert max_rel_diff(isv.U, d[p + "U"]) <= TOL
    assert max_rel_diff(isv.D, d[p + "D"]) <= TOL  # D is never trained in ISV
    enroll, probes = make_stats(d, "enroll_"), make_stats(d, "probe_")
    z1 = isv.enroll(enroll)
    assert z1.shape == (1, d["means"].size)
    assert max_rel_diff(z1, d[p + "z1"]) <= TOL
    isv.enroll_iterations = 3
    z3 = isv.enroll(enroll)
    assert max_rel_diff(z3, d[p + "z3"]) <= TOL
    assert max_rel_diff(isv.estimate_x(probes[:1]), d[p + "x_probe1"]) <= TOL
    assert max_rel_diff(isv.estimate_x(probes), d[p + "x_probe3"]) <= TOL
    scores = [
        isv.score(z1, probes[:1]),
        isv.score(z1, probes),
        isv.score(z3, probes[:1]),
        isv.score(z3[0], probes),
    ]
    assert all(isinstance(s, np.float64) for s in scores)
    assert max_rel_diff(scores, d[p + "scores"]) <= TOL


@pytest.mark.parametrize("init", ["rs", "explicit"])
@pytest.mark.parametrize("case", CASES)
def test_jfa_training_enrolment_and_scores(case, init):
    d = load_case(case)
    p = f"jfa_{init}_"
    jfa = trained("jfa", d, init)
    for name in ("U", "V", "D"):
        assert max_rel_diff(getattr(jfa, name), d[p + name]) <= TOL, name
    enroll, probes = make_stats(d, "enroll_"), make_stats(d, "probe_")
    y1, z1 = jfa.enroll(enroll)
    assert y1.shape == (jfa.r_V,) and z1.shape == (d["means"].size,)
    assert max_rel_diff(y1, d[p + "y1"]) <= TOL
    assert max_rel_diff(z1, d[p + "z1"]) <= TOL
    # several enrolment iterations: the reference with the y posterior's sign corrected
    jfa.enroll_iterations = 3
    y3, z3 = jfa.enroll(enroll)
    assert max_rel_diff(y3, d[p + "y3"]) <= TOL
    assert max_rel_diff(z3, d[p + "z3"]) <= TOL
    if case == "small":  # where D is not negligible, the reference's uncorrected y differs
        assert max_rel_diff(y3, d[p + "y3_bug"]) > 1e-4
    assert max_rel_diff(jfa.estimate_x(probes), d[p + "x_probe3"]) <= TOL
    scores = [
        jfa.score((y1, z1), probes[:1]),
        jfa.score((y1, z1), probes),
        jfa.score((y3, z3), probes[:1]),
    ]
    assert max_rel_diff(scores, d[p + "scores"]) <= TOL


@pytest.mark.parametrize("case", ["small", "medium"])
def test_isv_step_methods(case):
    d = load_case(case)
    p = "isv_explicit_"
    isv = machine("isv", d, "explicit")
    X, y = make_stats(d), d["labels"]
    K = int(y.max()) + 1
    n_acc, f_acc = isv.initialize(X, y, K)
    assert max_rel_diff(n_acc, d[p + "n_acc"]) <= TOL and max_rel_diff(f_acc, d[p + "f_acc"]) <= TOL
    A1, A2 = isv.e_step(X, y, np.bincount(y).tolist(), n_acc, f_acc)
    assert max_rel_diff(A1, d[p + "estep_A1"]) <= TOL
    assert max_rel_diff(A2, d[p + "estep_A2"]) <= TOL


@pytest.mark.parametrize("case", ["small", "medium"])
@pytest.mark.parametrize("init", ["rs", "explicit"])
def test_jfa_step_methods(case, init):
    d = load_case(case)
    p = f"jfa_{init}_"
    jfa = machine("jfa", d)
    jfa.U, jfa.V, jfa.D = d[p + "U"], d[p + "V"], d[p + "D"]
    X, y = make_stats(d), d["labels"]
    counts = np.bincount(y).tolist()
    n_acc, f_acc = jfa.initialize(X, y, len(counts))
    for got, key in zip(jfa.e_step_v(X, y, counts, n_acc, f_acc), ("estep_v_A1", "estep_v_A2")):
        assert max_rel_diff(got, d[p + key]) <= TOL, key
    latent_y = jfa.finalize_v(X, y, counts, n_acc, f_acc)
    assert max_rel_diff(latent_y, d[p + "latent_y"]) <= TOL
    for got, key in zip(jfa.e_step_u(X, y, counts, latent_y), ("estep_u_A1", "estep_u_A2")):
        assert max_rel_diff(got, d[p + key]) <= TOL, key
    latent_x = jfa.finalize_u(X, y, counts, latent_y)
    assert [lx.shape for lx in latent_x] == [(jfa.r_U, c) for c in counts]
    assert max_rel_diff(np.concatenate([lx.T for lx in latent_x]), d[p + "latent_x"]) <= TOL
    for got, key in zip(
        jfa.e_step_d(X, y, counts, latent_x, latent_y, n_acc, f_acc), ("estep_d_A1", "estep_d_A2")
    ):
        assert max_rel_diff(got, d[p + key]) <= TOL, key


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_fit_equals_the_public_step_methods(kind):
    """fit's fused single-pass E-steps give what the reference's step composition gives."""
    d = load_case("small")
    X, y = make_stats(d), d["labels"]
    counts = np.bincount(y).tolist()
    fitted = trained(kind, d)
    m = machine(kind, d)
    n_acc, f_acc = m.initialize(X, y, len(counts))
    for _ in range(int(d["params"][2])):
        if kind == "isv":
            m.m_step([m.e_step(X, y, counts, n_acc, f_acc)])
        else:
            m.m_step_v([m.e_step_v(X, y, counts, n_acc, f_acc)])
    if kind == "jfa":
        latent_y = m.finalize_v(X, y, counts, n_acc, f_acc)
        for _ in range(int(d["params"][2])):
            m.m_step_u([m.e_step_u(X, y, counts, latent_y)])
        latent_x = m.finalize_u(X, y, counts, latent_y)
        for _ in range(int(d["params"][2])):
            m.m_step_d([m.e_step_d(X, y, counts, latent_x, latent_y, n_acc, f_acc)])
        assert max_rel_diff(m.V, fitted.V) <= TOL
    assert max_rel_diff(m.U, fitted.U) <= TOL
    assert max_rel_diff(m.D, fitted.D) <= TOL


def test_array_entry_points():
    d = dict(np.load(FIXTURES / "case_arrays.npz"))
    isv = ISVMachine(2, em_iterations=3, ubm=make_ubm(d)).fit_using_array(d["X"], d["y"])
    assert max_rel_diff(isv.U, d["isv_U"]) <= TOL
    z = isv.enroll_using_array(d["enroll"])
    assert max_rel_diff(z, d["isv_z"]) <= TOL
    assert max_rel_diff(isv.score_using_array(z, list(d["probes"])), d["isv_score"]) <= TOL
    jfa = JFAMachine(2, 1, em_iterations=3, ubm=make_ubm(d)).fit_using_array(d["X"], d["y"])
    for name in ("U", "V", "D"):
        assert max_rel_diff(getattr(jfa, name), d["jfa_" + name]) <= TOL, name
    model = jfa.enroll_using_array(d["enroll"])
    assert max_rel_diff(model[0], d["jfa_y"]) <= TOL and max_rel_diff(model[1], d["jfa_z"]) <= TOL
    assert max_rel_diff(jfa.score_using_array(model, list(d["probes"])), d["jfa_score"]) <= TOL


def test_emkit_statistics_match_the_reference_statistics():
    d = load_case("small")
    ubm = make_ubm(d)
    sessions = np.split(d["frames"], np.cumsum(d["frame_counts"])[:-1])
    ours = ubm.transform(sessions)
    assert max_rel_diff([s.n for s in ours], d["n"]) <= TOL
    assert max_rel_diff([s.sum_px for s in ours], d["sum_px"]) <= TOL
    assert max_rel_diff([s.sum_pxx for s in ours], d["sum_pxx"]) <= TOL
    assert max_rel_diff([s.log_likelihood for s in ours], d["ll"]) <= TOL
    assert [s.t for s in ours] == d["t"].tolist()
