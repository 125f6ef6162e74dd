"""ISV/JFA behaviour: scikit-learn conventions, the fixed quirks, transform, and clear errors."""

import pickle
import re

import numpy as np
import pytest
from _parity import assert_parity, max_rel_diff
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from factor_analysis_cases import load_case, machine, make_stats, make_ubm, trained

from emkit import GMMMachine
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.stats import GMMStats


@pytest.fixture(scope="module")
def small():
    return load_case("small")


# -- scikit-learn conventions ---------------------------------------------------------------------


def test_params_clone_and_pickle(small):
    isv = ISVMachine(2, enroll_iterations=3, random_state=7)
    assert isv.get_params(deep=False) == dict(
        r_U=2,
        em_iterations=10,
        relevance_factor=4.0,
        random_state=7,
        ubm=None,
        ubm_kwargs=None,
        enroll_iterations=3,
        checkpoint=None,
    )
    assert clone(isv).enroll_iterations == 3
    jfa = JFAMachine(2, 3, enroll_iterations=2)
    assert (
        jfa.get_params(deep=False)["r_V"] == 3
        and clone(jfa).get_params(deep=False)["enroll_iterations"] == 2
    )
    fitted = trained("isv", small)
    assert clone(fitted).__sklearn_is_fitted__() is False
    again = pickle.loads(pickle.dumps(fitted))
    probes, enroll = make_stats(small, "probe_"), make_stats(small, "enroll_")
    assert again.score(again.enroll(enroll), probes) == fitted.score(fitted.enroll(enroll), probes)
    assert not again.U.flags.writeable


def test_no_global_random_state_side_effect(small):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    trained("jfa", small)
    assert np.array_equal(np.random.get_state()[1], before)


def test_random_state_objects(small):
    X, y = make_stats(small), small["labels"]
    seed = int(small["params"][3])
    from_int = machine("isv", small, em_iterations=0).fit(X, y)
    from_rs = machine("isv", small, em_iterations=0, random_state=np.random.RandomState(seed)).fit(
        X, y
    )
    assert np.array_equal(from_int.U, from_rs.U)
    g1 = machine("jfa", small, em_iterations=0, random_state=np.random.default_rng(1)).fit(X, y)
    g2 = machine("jfa", small, em_iterations=0, random_state=np.random.default_rng(1)).fit(X, y)
    assert np.array_equal(g1.V, g2.V) and not np.array_equal(g1.U, from_int.U)
    assert machine("isv", small, random_state=None).fit(X, y).U.shape == from_int.U.shape


def test_parameters_are_read_only_and_fit_continues(small):
    X, y = make_stats(small), small["labels"]
    isv = machine("isv", small, em_iterations=1).fit(X, y)
    with pytest.raises(ValueError, match="read-only"):
        isv.U[0, 0] = 1.0
    isv.fit(X, y)  # a second call continues from the current U
    assert max_rel_diff(isv.U, machine("isv", small, em_iterations=2).fit(X, y).U) <= 1e-12


# -- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relabel",
    [
        lambda k: f"speaker-{k}",
        lambda k: 10 * k + 3,  # not 0..K-1 (the reference raised IndexError)
        lambda k: ("id", k),  # tuples
    ],
)
def test_any_hashable_labels(small, relabel):
    X, y = make_stats(small), small["labels"]
    reference = trained("isv", small)
    labels = [relabel(int(k)) for k in y]
    isv = machine("isv", small).fit(X, labels)
    assert max_rel_diff(isv.U, reference.U) <= 1e-12
    assert len(isv.classes_) == len(set(labels))
    jfa = machine("jfa", small).fit(
        X, np.array(labels, dtype=object) if isinstance(labels[0], str) else labels
    )
    assert max_rel_diff(jfa.V, trained("jfa", small).V) <= 1e-12


def test_unsortable_labels_keep_first_appearance_order(small):
    X, y = make_stats(small), small["labels"]
    names = {0: 1, 1: "b", 2: (3,), 3: 2.5}  # mixed types cannot be sorted
    isv = machine("isv", small).fit(X, [names[int(k)] for k in y])
    assert list(isv.classes_) == list(dict.fromkeys(names[int(k)] for k in y))
    assert max_rel_diff(isv.U, trained("isv", small).U) <= 1e-12


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("container", [np.array, list])
def test_nan_labels_are_refused_naming_y_and_the_index(small, kind, container):
    X, y = make_stats(small), np.asarray(small["labels"], dtype=np.float64)
    y[[3, 6]] = np.nan
    with pytest.raises(ValueError, match=re.escape("y[3] is NaN: class labels must not be NaN")):
        machine(kind, small).fit(X, container(y))


# -- the fixed quirks ---------------------------------------------------------------------------


def test_user_set_U_is_never_overwritten(small):
    X, y = make_stats(small), small["labels"]
    U0 = np.random.default_rng(5).normal(size=(small["means"].size, 2))
    isv = machine("isv", small, em_iterations=0)
    isv.U = U0  # D not set: the reference re-drew U here
    isv.fit(X, y)
    assert np.array_equal(isv.U, U0)
    np.testing.assert_array_equal(
        isv.D, np.sqrt(small["variances"].ravel() / float(small["relevance"]))
    )
    # with the UBM trained inside fit_using_array too
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(6, 20, 2))
    m = ISVMachine(1, em_iterations=0, ubm_kwargs=dict(n_gaussians=2))
    m.U = np.ones((4, 1))
    m.fit_using_array(frames, [0, 0, 1, 1, 2, 2])
    assert np.array_equal(m.U, np.ones((4, 1))) and m.ubm.means.shape == (2, 2)
    # JFA: a user-set V keeps U's draw from random_state, and V is kept
    jfa = machine("jfa", small, em_iterations=0)
    jfa.V = np.zeros((small["means"].size, 2))
    jfa.fit(X, y)
    assert np.array_equal(jfa.V, 0 * jfa.V) and np.array_equal(jfa.U, small["jfa_U0"])


def _naive_jfa_enroll(jfa, stats, iterations):
    """The corrected JFA enrolment written out with loops and explicit solves."""
    C, D = jfa.ubm.means.shape
    m, var = jfa.ubm.means.ravel(), jfa.ubm.variances.ravel()
    U, V, Dd = jfa.U, jfa.V, jfa.D
    n = [s.n for s in stats]
    F = [s.sum_px.ravel() for s in stats]
    N, Ftot = sum(n), sum(F)
    x = [np.zeros(U.shape[1]) for _ in stats]
    y, z = np.zeros(V.shape[1]), np.zeros(C * D)

    def posterior(W, n_c, centred):
        precision = np.eye(W.shape[1])
        for c in range(C):
            Wc = W[c * D : (c + 1) * D]
            precision += n_c[c] * Wc.T @ (Wc / var[c * D : (c + 1) * D, None])
        return np.linalg.solve(precision, W.T @ (centred / var))

    for _ in range(iterations):
        Ux = sum(np.repeat(n_h, D) * (U @ x_h) for n_h, x_h in zip(n, x))
        y = posterior(V, N, Ftot - np.repeat(N, D) * (m + Dd * z) - Ux)  # + D z: the corrected sign
        x = [
            posterior(U, n_h, F_h - np.repeat(n_h, D) * (m + Dd * z + V @ y))
            for n_h, F_h in zip(n, F)
        ]
        Ux = sum(np.repeat(n_h, D) * (U @ x_h) for n_h, x_h in zip(n, x))
        centred = Ftot - np.repeat(N, D) * (m + V @ y) - Ux
        z = Dd / var * centred / (1 + Dd**2 / var * np.repeat(N, D))
    return y, z


@pytest.mark.parametrize("iterations", [1, 4])
def test_jfa_enrolment_matches_a_hand_derivation(small, iterations):
    jfa = machine("jfa", small, "explicit", enroll_iterations=iterations)
    jfa.fit(make_stats(small), small["labels"])
    jfa.D = np.full(jfa.D.shape, 0.5)  # a D far from 0, so that the y posterior's centring matters
    enroll = make_stats(small, "enroll_")
    y, z = jfa.enroll(enroll)
    y_ref, z_ref = _naive_jfa_enroll(jfa, enroll, iterations)
    assert max_rel_diff(y, y_ref) <= 1e-10 and max_rel_diff(z, z_ref) <= 1e-10


def test_isv_transform(small):
    isv = trained("isv", small)
    probes = make_stats(small, "probe_")
    one = isv.transform(probes[0])
    assert one.shape == (small["means"].size,)
    assert_parity(one, isv.estimate_ux([probes[0]]), tol=1e-12)
    many = isv.transform(probes)
    assert many.shape == (3, small["means"].size)
    for i, p in enumerate(probes):
        assert_parity(many[i], isv.estimate_ux([p]), tol=1e-12)
    frames = np.random.default_rng(0).normal(size=(30, small["means"].shape[1]))
    assert_parity(
        isv.transform(frames), isv.estimate_ux([isv.ubm.acc_stats(frames)]), tol=1e-12
    )
    assert isv.transform([frames, frames[:5]]).shape == (2, small["means"].size)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_scoring_several_templates_at_once(small, kind):
    m = trained(kind, small)
    probes = make_stats(small, "probe_")
    model = m.enroll(make_stats(small, "enroll_"))
    templates = [[probes[0]], probes[1:], [probes[2]]]
    batched = m.score(model, templates)
    assert batched.shape == (3,)
    assert_parity(batched, [m.score(model, t) for t in templates], tol=1e-12)
    empty = GMMStats(*small["means"].shape)
    assert m.score(model, [empty]) == 0.0  # T = 0


def test_zero_iterations_train_nothing(small):
    jfa = machine("jfa", small, "explicit", em_iterations=0).fit(make_stats(small), small["labels"])
    for name in ("U", "V", "D"):
        assert np.array_equal(getattr(jfa, name), small["jfa_explicit_" + name + "_init"])


def test_a_speaker_subspace_wider_than_the_speakers_is_warned_of(small):
    X, y = make_stats(small), small["labels"]
    K = len(set(np.asarray(y).tolist()))
    with pytest.warns(UserWarning, match=re.escape(f"r_V = {K + 1} is more than the {K} speakers "
                                                   f"(classes) of the training data: V learns at most {K}")) as caught:
        JFAMachine(1, K + 1, ubm=make_ubm(small), em_iterations=1, random_state=0).fit(X, y)
    assert caught[0].filename == __file__  # the user's line (was emkit's)
    JFAMachine(1, K, ubm=make_ubm(small), em_iterations=1, random_state=0).fit(X, y)  # no warning


# -- bad input ----------------------------------------------------------------------------------


def test_labels_and_statistics_of_different_lengths(small):
    X, y = make_stats(small), small["labels"]
    with pytest.raises(ValueError, match=re.escape(f"len(X) = {len(X)}, len(y) = {len(X) - 1}")):
        machine("isv", small).fit(X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of sessions"):
        machine("isv", small).fit_using_array(np.zeros((4, 3, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="y is required"):
        machine("isv", small).fit(X)


def test_statistics_that_do_not_match_the_ubm(small):
    X, y = make_stats(small), small["labels"]
    X[2] = GMMStats(5, 3)
    with pytest.raises(
        ValueError,
        match=re.escape("X[2] has statistics of shape (n_gaussians, n_features) = (5, 3); the UBM has (4, 3)"),
    ):
        machine("jfa", small).fit(X, y)
    isv = trained("isv", small)
    with pytest.raises(ValueError, match=r"X\[0\] has statistics of shape"):
        isv.enroll([GMMStats(4, 2)])
    with pytest.raises(ValueError, match=r"data\[0\] has statistics of shape"):
        isv.score(isv.enroll(make_stats(small, "enroll_")), [GMMStats(4, 2)])
    with pytest.raises(TypeError, match=r"X\[1\] must be a GMMStats; got str"):
        machine("isv", small).fit([X[0], "oops"], [0, 1])
    bad = make_stats(small)
    bad[0].sum_px[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        machine("isv", small).fit(bad, y)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_negative_occupancies_and_nan_frame_counts_name_the_session(small, kind):
    X, y = make_stats(small), small["labels"]
    X[2] = X[2].copy()
    X[2].n[0] = -5.0
    with pytest.raises(ValueError, match=re.escape("X holds a negative occupancy: X[2].n[0] = -5.0")):
        machine(kind, small).fit(X, y)
    enrol = make_stats(small, "enroll_")
    enrol[1] = enrol[1].copy()
    enrol[1].t = np.nan
    with pytest.raises(ValueError, match=re.escape("X holds statistics with NaN or infinity: X[1].t")):
        trained(kind, small).enroll(enrol)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("field, message", [
    ("t", "data holds a negative frame count: data[0].t = -"),
    ("n", "data holds a negative occupancy: data[0].n[0] = -5.0"),
])
def test_a_single_probe_with_negative_counts_is_refused(small, kind, field, message):
    # one probe session takes its own path; a negative t flipped the score's sign there
    model = trained(kind, small)
    enrolled = model.enroll(make_stats(small, "enroll_"))
    probe = make_stats(small)[0].copy()
    if field == "t":
        probe.t = -probe.t
    else:
        probe.n[0] = -5.0
    with pytest.raises(ValueError, match=re.escape(message)):
        model.score(enrolled, [probe])
    with pytest.raises(ValueError, match=message.split(": ")[0].replace("data", "probes")):
        model.score_matrix([enrolled], [probe])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(r_U=0), "r_U must be an integer >= 1; got 0"),
        (dict(r_U=2, em_iterations=-1), "em_iterations must be an integer >= 0"),
        (dict(r_U=2, enroll_iterations=0), "enroll_iterations must be an integer >= 1"),
        (dict(r_U=2, relevance_factor=0.0), "relevance_factor must be a finite number > 0"),
        # inf was accepted: D = sqrt(Sigma / inf) = 0, every enrolled model the UBM
        (dict(r_U=2, relevance_factor=float("inf")), "relevance_factor must be a finite number > 0; "
                                                     "got inf"),
    ],
)
def test_bad_hyperparameters(small, kwargs, message):
    d = small
    with pytest.raises(ValueError, match=re.escape(message)):
        ISVMachine(ubm=make_ubm(d), **kwargs).fit(make_stats(d), d["labels"])
    with pytest.raises(ValueError, match="r_V must be an integer >= 1; got 0"):
        JFAMachine(2, 0, ubm=make_ubm(d)).fit(make_stats(d), d["labels"])
    with pytest.raises(TypeError, match="r_U must be an integer"):
        ISVMachine(2.5, ubm=make_ubm(d)).fit(make_stats(d), d["labels"])


def test_a_class_with_no_session(small):
    X, y = make_stats(small), small["labels"]
    groups = [[s for s, label in zip(X, y) if label == k] for k in range(4)]
    labels = [[k] * len(g) for k, g in enumerate(groups)]
    per_class = machine("isv", small).fit(
        groups, [np.array(v) for v in labels]
    )  # the reference's nested form
    assert max_rel_diff(per_class.U, trained("isv", small).U) <= 1e-12
    groups[1], labels[1] = [], []
    with pytest.raises(ValueError, match=re.escape("X[1] / y[1]: class group 1 has no session")):
        machine("isv", small).fit(groups, [np.array(v) for v in labels])
    gap = np.where(y >= 1, y + 1, y)  # class index 1 has no session
    with pytest.raises(ValueError, match="y: class 1 has no session"):
        machine("isv", small).initialize(X, gap, 5)


def test_errors_before_fitting(small):
    # with a trained UBM, U/V/D have the reference's initial values (test_factor_analysis_dropin)
    isv = machine("isv", small, ubm=GMMMachine(4))
    probes = make_stats(small, "probe_")
    with pytest.raises(
        NotFittedError, match=re.escape("ISVMachine is not fitted (U, D not set): call fit")
    ):
        isv.score(np.zeros((1, 12)), probes)
    with pytest.raises(NotFittedError, match="before enroll"):
        isv.enroll(probes)
    with pytest.raises(NotFittedError, match="before estimate_x"):
        isv.estimate_x(probes)
    with pytest.raises(AttributeError, match="has no U yet"):
        isv.U  # noqa: B018 - NotFittedError is an AttributeError, as the reference's missing _U was
    jfa = machine("jfa", small, ubm=GMMMachine(4))
    jfa.U, jfa.D = np.zeros((12, 2)), np.ones(12)
    with pytest.raises(NotFittedError, match=re.escape("(V not set)")):
        jfa.score((np.zeros(2), np.zeros(12)), probes)
    with pytest.raises(ValueError, match="ubm is None: fit needs a trained GMMMachine"):
        ISVMachine(2).fit(make_stats(small), small["labels"])
    with pytest.raises(TypeError, match="ubm_kwargs must be a dict"):
        ISVMachine(2).fit_using_array(np.zeros((4, 3, 2)), [0, 0, 1, 1])


def test_bad_models_and_probes(small):
    isv, jfa = trained("isv", small), trained("jfa", small)
    probes = make_stats(small, "probe_")
    with pytest.raises(
        ValueError, match=re.escape("latent_z must have shape (12,) (or (1, 12)); got (11,)")
    ):
        isv.score(np.zeros(11), probes)
    with pytest.raises(TypeError, match="model must be the \\(y, z\\) pair"):
        jfa.score(np.zeros(12), probes)
    with pytest.raises(ValueError, match=re.escape("model[0] (y) must have shape (2,)")):
        jfa.score((np.zeros(3), np.zeros(12)), probes)
    with pytest.raises(TypeError, match="data must be a non-empty list of GMMStats"):
        isv.score(np.zeros(12), [])
    with pytest.raises(ValueError, match="X is empty"):
        isv.enroll([])
    wrong = machine("isv", small)
    wrong.U = np.zeros((12, 3))
    with pytest.raises(ValueError, match=re.escape("U must have shape (12, 2)")) as caught:
        wrong.fit(make_stats(small), small["labels"])
    assert "fit sklearn.base.clone(machine) or assign U = None first" in str(caught.value)
    wrong.U = None  # starts afresh from the initial U
    assert wrong.fit(make_stats(small), small["labels"]).U.shape == (12, 2)


@pytest.mark.parametrize("kind, name, value, wanted", [
    ("isv", "U", np.zeros((11, 2)), "(12, r_U)"),
    ("isv", "U", np.zeros(12), "(12, r_U)"),
    ("isv", "D", np.ones(11), "(12,)"),
    ("jfa", "V", np.zeros((13, 2)), "(12, r_V)"),
])
def test_parameters_of_another_supervector_size_are_named_when_used(small, kind, name, value, wanted):
    # enrolment, scoring and estimate_x failed with numpy's broadcasting or indexing error
    m = trained(kind, small)
    setattr(m, name, value)
    cls = "ISVMachine" if kind == "isv" else "JFAMachine"
    match = re.escape(f"{cls}.{name} has shape {value.shape}; the UBM (C*D = 12) needs {name} of "
                      f"shape {wanted}")
    probes = make_stats(small, "probe_")
    model = trained(kind, small).enroll(probes[:1])
    for use in (lambda: m.enroll(probes[:1]), lambda: m.estimate_x(probes[:1]),
                lambda: m.score(model, probes[:1])):
        with pytest.raises(ValueError, match=match):
            use()


def test_jfa_models_kept_in_a_numpy_object_array_score_as_the_pairs(small):
    # np.array([jfa.enroll(s) for s in speakers], dtype=object) holds an (M, 2) object array; the
    # reference read a row's model[0] and model[1], emkit refused it ("got ndarray")
    m = trained("jfa", small)
    probes = make_stats(small, "probe_")
    pairs = [m.enroll(make_stats(small, "enroll_")), m.enroll(probes[:1])]
    stored = np.empty((2, 2), dtype=object)
    stored[:] = pairs
    for i in range(2):
        assert m.score(stored[i], [probes[2]]) == m.score(pairs[i], [probes[2]])
    np.testing.assert_array_equal(m.score_matrix(stored, probes), m.score_matrix(pairs, probes))
    with pytest.raises(TypeError, match="model must be the \\(y, z\\) pair"):
        m.score(np.empty(3, dtype=object), [probes[2]])
