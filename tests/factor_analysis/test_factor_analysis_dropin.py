"""ISV/JFA used as code written for bob.learn.em 3.3.1 uses them: initial U/V/D right after
construction, numpy object arrays of GMMStats, clone + refit, statistics far from the origin."""

import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
from _parity import max_rel_diff
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from factor_analysis_cases import load_case, machine, make_stats, make_ubm, trained

from emkit import GMMMachine, GMMStats, linear_scoring
from emkit.factor_analysis import ISVMachine, JFAMachine

INITIAL = Path(__file__).parents[1] / "data" / "factor_analysis" / "initial_values.npz"


@pytest.fixture(scope="module")
def init():
    return dict(np.load(INITIAL))


@pytest.fixture(scope="module")
def small():
    return load_case("small")


def _stats(d, name):
    s = GMMStats(*d[name + "_sum_px"].shape)
    s.init_fields(0.0, int(d[name + "_t"]), d[name + "_n"].copy(), d[name + "_sum_px"].copy(),
                  d[name + "_sum_pxx"].copy())
    return s


def _new(kind, d, random_state, **kwargs):
    ubm = make_ubm(d)
    r_U, r_V = (int(v) for v in d["r"])
    common = dict(relevance_factor=float(d["relevance"]), random_state=random_state, ubm=ubm)
    common.update(kwargs)
    return ISVMachine(r_U, **common) if kind == "isv" else JFAMachine(r_U, r_V, **common)


# -- item: U, V and D right after construction -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_initial_values_are_the_references(init, seed):
    isv, jfa = _new("isv", init, seed), _new("jfa", init, seed)
    assert "_U" not in isv.__dict__ and "_D" not in jfa.__dict__  # __init__ only stores parameters
    np.testing.assert_array_equal(np.array(isv.U), init[f"isv_{seed}_U"])
    np.testing.assert_array_equal(isv.D, init[f"isv_{seed}_D"])
    # V comes after U in the stream, whichever is read first
    np.testing.assert_array_equal(jfa.V, init[f"jfa_{seed}_V"])
    np.testing.assert_array_equal(jfa.U, init[f"jfa_{seed}_U"])
    np.testing.assert_array_equal(jfa.D, init[f"jfa_{seed}_D"])
    probe = _stats(init, "probe")
    enrol = [_stats(init, "enrol0"), _stats(init, "enrol1")]
    fresh = _new("isv", init, seed)  # used before U is ever read
    assert max_rel_diff(fresh.estimate_x([probe]), init[f"isv_{seed}_x"]) <= 1e-10
    assert abs(fresh.score(fresh.enroll(enrol), [probe]) - init[f"isv_{seed}_score"]) <= 1e-10 * max(
        1.0, abs(init[f"isv_{seed}_score"])
    )
    assert max_rel_diff(_new("jfa", init, seed).estimate_x([probe]), init[f"jfa_{seed}_x"]) <= 1e-10


def test_random_state_none_draws_from_numpys_global_generator(init):
    # the reference draws from np.random as it stands (in its constructor; emkit on first use)
    seed = int(init["none_seed"])
    np.random.seed(seed)
    isv = _new("isv", init, None)
    np.testing.assert_array_equal(isv.U, init["isv_none_U"])
    np.random.seed(seed)
    jfa = _new("jfa", init, None)
    np.testing.assert_array_equal(jfa.V, init["jfa_none_V"])
    np.testing.assert_array_equal(jfa.U, init["jfa_none_U"])


def test_assigned_U_is_used_and_D_is_the_initial_value(init):
    probe = _stats(init, "probe")
    isv = _new("isv", init, 1)
    isv.U = init["isv_0_U"]
    assert max_rel_diff(isv.estimate_x([probe]), init["isv_0_x"]) <= 1e-10
    np.testing.assert_array_equal(isv.U, init["isv_0_U"])
    np.testing.assert_array_equal(isv.D, init["isv_0_D"])
    assert not isv.__sklearn_is_fitted__()  # D is only the initial value
    isv.D = isv.D
    assert isv.__sklearn_is_fitted__()


def test_initial_values_follow_the_hyper_parameters(init):
    isv = _new("isv", init, 0)
    assert isv.U.shape == (6, 2)
    isv.set_params(r_U=3, random_state=1)
    assert isv.U.shape == (6, 3)
    np.testing.assert_array_equal(isv.U, np.random.RandomState(1).normal(size=(6, 3)))
    isv.set_params(relevance_factor=2.0)
    np.testing.assert_allclose(isv.D, np.sqrt(init["variances"].ravel() / 2.0), rtol=1e-15)
    isv.U = np.ones((6, 3))  # assigned values are kept
    isv.set_params(random_state=5)
    np.testing.assert_array_equal(isv.U, np.ones((6, 3)))


def test_reading_U_before_fit_changes_nothing(small):
    X, y = make_stats(small), small["labels"]
    reference = trained("jfa", small)
    m = machine("jfa", small)
    m.U, m.V  # noqa: B018 - drawn on first access
    assert not m.__sklearn_is_fitted__()
    m.fit(X, y)
    assert m.__sklearn_is_fitted__()
    for name in ("U", "V", "D"):
        np.testing.assert_array_equal(getattr(m, name), getattr(reference, name))
    isv = machine("isv", small)
    isv.D  # noqa: B018 - an initial value that ISV training keeps
    assert isv.fit(X, y).__sklearn_is_fitted__()
    again = pickle.loads(pickle.dumps(machine("isv", small)))
    np.testing.assert_array_equal(again.U, machine("isv", small).U)


def test_untrained_ubm_still_raises_not_fitted():
    isv = ISVMachine(2, ubm=GMMMachine(2))
    with pytest.raises(NotFittedError, match="has no U yet"):
        isv.U  # noqa: B018
    with pytest.raises(NotFittedError, match="has no D yet"):
        ISVMachine(2).D  # noqa: B018


# -- item: numpy object arrays of GMMStats ----------------------------------------------------------


def test_object_arrays_of_stats(small):
    X, y = make_stats(small), small["labels"]
    probes, enrol = make_stats(small, "probe_"), make_stats(small, "enroll_")
    for kind in ("isv", "jfa"):
        ref = trained(kind, small)
        m = machine(kind, small).fit(np.array(X), y)
        assert max_rel_diff(m.U, ref.U) <= 1e-12
        model = ref.enroll(enrol)
        model_arr = ref.enroll(np.array(enrol))
        for a, b in zip(model if kind == "jfa" else [model], model_arr if kind == "jfa" else [model_arr]):
            np.testing.assert_array_equal(a, b)
        assert ref.score(model, np.array(probes)) == ref.score(model, probes)
        assert ref.score(model, np.array(probes[:1])) == ref.score(model, probes[:1])
        templates = [[probes[0], probes[1]], [probes[1], probes[-1]]]
        np.testing.assert_array_equal(
            ref.score(model, np.array(templates)), ref.score(model, templates)
        )
        np.testing.assert_array_equal(ref.estimate_x(np.array(probes)), ref.estimate_x(probes))
        np.testing.assert_array_equal(ref.estimate_ux(np.array(probes)), ref.estimate_ux(probes))
    isv = trained("isv", small)
    np.testing.assert_array_equal(isv.transform(np.array(probes)), isv.transform(probes))
    # step methods
    codes = np.asarray(y)
    n_acc, f_acc = isv.initialize(np.array(X), codes, 4)
    n_ref, f_ref = isv.initialize(X, codes, 4)
    np.testing.assert_array_equal(n_acc, n_ref)
    np.testing.assert_array_equal(f_acc, f_ref)
    # the reference's per-class form, as a 2-D object array (equal group sizes)
    groups = [[s for s, label in zip(X, y) if label == k] for k in range(4)]
    labels = [np.full(len(g), k) for k, g in enumerate(groups)]
    ragged = np.empty(4, dtype=object)  # a 1-D object array of lists
    ragged[:] = groups
    b = machine("isv", small).fit(groups, labels)
    np.testing.assert_array_equal(machine("isv", small).fit(ragged, labels).U, b.U)
    firsts = [g[:1] for g in groups]  # equal sizes: np.array gives a 2-D object array
    assert np.array(firsts).shape == (4, 1)
    one = [lab[:1] for lab in labels]
    np.testing.assert_array_equal(
        machine("isv", small).fit(np.array(firsts), one).U, machine("isv", small).fit(firsts, one).U
    )


def test_linear_scoring_takes_object_arrays(small):
    ubm = make_ubm(small)
    probes = make_stats(small, "probe_")
    models = [ubm.means + 0.1, ubm.means - 0.2]
    np.testing.assert_array_equal(
        linear_scoring(models, ubm, np.array(probes)), linear_scoring(models, ubm, probes)
    )


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_fit_using_array_takes_a_numpy_object_array_of_sessions(small, kind):
    # sessions of different lengths kept in an object array: the reference's ubm.transform
    # iterated it; emkit refused it ("X must be frames ... got shape (3,)")
    ubm = make_ubm(small)
    rng = np.random.default_rng(0)
    frames = [ubm.means[0] + rng.standard_normal((n, ubm.means.shape[1])) for n in (5, 9, 7, 4)]
    sessions = np.empty(4, dtype=object)
    sessions[:] = frames
    y = [0, 0, 1, 1]
    listed = machine(kind, small, ubm=ubm).fit_using_array(frames, y)
    stored = machine(kind, small, ubm=ubm).fit_using_array(sessions, y)
    for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
        np.testing.assert_array_equal(getattr(stored, name), getattr(listed, name))


# -- item: clone and refit -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_clone_and_refit(small, kind):
    X, y = make_stats(small), small["labels"]
    fitted = trained(kind, small)
    twin = clone(fitted)
    assert not twin.__sklearn_is_fitted__()
    assert twin.ubm is not fitted.ubm and twin.get_params(deep=False).keys() == fitted.get_params(deep=False).keys()
    twin.fit(X, y)
    for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
        np.testing.assert_array_equal(getattr(twin, name), getattr(fitted, name))
    np.testing.assert_array_equal(twin.ubm.means, fitted.ubm.means)
    assert clone(machine(kind, small, ubm=None)).ubm is None
    assert copy.deepcopy(fitted).score is not None
