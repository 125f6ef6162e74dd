"""IVectorMachine: parity with bob.learn.em 3.3.1 fixtures, EM invariants, batching/dask, bad input."""

import pickle
import re

import numpy as np
import pytest
from _parity import DATA, assert_parity, max_rel_diff  # noqa: F401
from ivector_cases import FIXTURES, SETS, TOL, _stats, load_set  # noqa: F401
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from emkit.gmm import GMMMachine
from emkit.ivector import (IVectorMachine, IVectorStats, compute_id_tt_sigma_inv_t,
                           compute_tct_sigmac_inv, compute_tct_sigmac_inv_tc,
                           compute_tt_sigma_inv_fnorm, e_step, m_step)
from emkit.stats import GMMStats

@pytest.fixture(scope="module")
def trained():
    """One machine per fixture set, trained once with the reference's seed."""
    out = {}
    for name in SETS:
        ubm, cfg, seed, train, test = load_set(name)
        out[name] = (IVectorMachine(ubm, random_state=seed, **cfg).fit(train), train, test)
    return out


# ---------------------------------------------------------------------------------------------
# parity
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_training_parity(trained, name):
    machine, _, _ = trained[name]
    assert max_rel_diff(machine.T, FIXTURES[name + "_T"]) <= TOL
    assert max_rel_diff(machine.sigma, FIXTURES[name + "_sigma"]) <= TOL
    if name == "nosigma":
        np.testing.assert_array_equal(machine.sigma, FIXTURES[name + "_ubm_variances"])


@pytest.mark.parametrize("name", SETS)
def test_projection_parity(trained, name):
    machine, train, test = trained[name]
    ivectors = machine.transform(train)
    assert isinstance(ivectors, np.ndarray) and ivectors.shape == (len(train), machine.dim_t)
    assert max_rel_diff(ivectors, FIXTURES[name + "_ivectors_train"]) <= TOL
    projected = np.array([machine.project(s) for s in test])
    assert max_rel_diff(projected, FIXTURES[name + "_ivectors_test"]) <= TOL
    assert_parity(machine.transform(test), projected, tol=1e-12)


@pytest.mark.parametrize("name", SETS)
def test_global_seed_reproduces_the_reference_initial_T(name):
    ubm, cfg, seed, train, _ = load_set(name)
    np.random.seed(seed)
    machine = IVectorMachine(ubm, **dict(cfg, max_iterations=0)).fit(train)  # random_state=None
    np.testing.assert_array_equal(machine.T, FIXTURES[name + "_T0"])
    assert IVectorMachine(ubm, random_state=seed, **dict(cfg, max_iterations=0)).fit(train).T.tolist() \
        == machine.T.tolist()


@pytest.mark.parametrize("name", SETS)
def test_e_step_m_step_and_helpers_parity(name):
    ubm, cfg, seed, train, _ = load_set(name)
    machine = IVectorMachine(ubm, **cfg)
    machine.T, machine.sigma = FIXTURES[name + "_T0"].copy(), ubm.variances.copy()
    stats = e_step(machine, train)
    assert stats.shape == machine.T.shape
    for field in ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij"):
        assert max_rel_diff(getattr(stats, field), FIXTURES[f"{name}_estep_{field}"]) <= TOL, field
    assert m_step(machine, stats) is machine
    assert max_rel_diff(machine.T, FIXTURES[name + "_mstep1_T"]) <= TOL
    assert max_rel_diff(machine.sigma, FIXTURES[name + "_mstep1_sigma"]) <= TOL
    T0, var = FIXTURES[name + "_T0"], ubm.variances
    assert max_rel_diff(compute_tct_sigmac_inv(T0, var), FIXTURES[name + "_h_tct_sigmac_inv"]) <= TOL
    assert max_rel_diff(compute_tct_sigmac_inv_tc(T0, var), FIXTURES[name + "_h_tct_sigmac_inv_tc"]) <= TOL
    assert max_rel_diff(compute_id_tt_sigma_inv_t(train[0], T0, var),
                        FIXTURES[name + "_h_id_tt_sigma_inv_t"]) <= TOL
    assert max_rel_diff(compute_tt_sigma_inv_fnorm(ubm.means, train[0], T0, var),
                        FIXTURES[name + "_h_tt_sigma_inv_fnorm"]) <= TOL


# ---------------------------------------------------------------------------------------------
# EM behaviour
# ---------------------------------------------------------------------------------------------


def test_log_likelihood_never_decreases(trained):
    for name in SETS:
        history = trained[name][0].log_likelihood_
        assert len(history) == trained[name][0].n_iter_
        assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:])), name


def test_convergence_threshold_stops_training():
    ubm, cfg, seed, train, _ = load_set("wide")
    full = IVectorMachine(ubm, random_state=seed, **dict(cfg, max_iterations=30)).fit(train)
    assert full.n_iter_ == 30
    history = np.array(full.log_likelihood_)
    change = np.abs(np.diff(history) / history[:-1])
    threshold = float(change[4]) * 1.0001  # met for the first time at iteration 6
    assert np.all(change[:4] > threshold)
    early = IVectorMachine(ubm, random_state=seed, convergence_threshold=threshold,
                           **dict(cfg, max_iterations=30)).fit(train)
    assert early.n_iter_ == 6
    np.testing.assert_allclose(early.log_likelihood_, history[:6], rtol=1e-12)
    unlimited = IVectorMachine(ubm, random_state=seed, convergence_threshold=threshold,
                               **dict(cfg, max_iterations=None)).fit(train)
    assert unlimited.n_iter_ == 6


def test_max_iterations_zero_trains_nothing():
    ubm, cfg, seed, train, _ = load_set("small")
    machine = IVectorMachine(ubm, random_state=seed, **dict(cfg, max_iterations=0)).fit(train)
    assert machine.n_iter_ == 0 and machine.log_likelihood_ == []
    np.testing.assert_array_equal(machine.T, FIXTURES["small_T0"])
    np.testing.assert_array_equal(machine.sigma, ubm.variances)
    assert machine.transform(train).shape == (len(train), cfg["dim_t"])


def test_zero_occupancy_gaussian_keeps_sigma():
    ubm, cfg, seed, train, _ = load_set("small")
    for s in train:
        s.n[1] = 0.0
        s.sum_px[1] = 0.0
        s.sum_pxx[1] = 0.0
    machine = IVectorMachine(ubm, random_state=seed, **cfg).fit(train)
    np.testing.assert_array_equal(machine.sigma[1], ubm.variances[1])
    assert np.all(machine.T[1] == 0)
    assert np.isfinite(machine.sigma).all() and np.isfinite(machine.transform(train)).all()


def test_random_state_forms_and_global_state():
    ubm, cfg, _, train, _ = load_set("small")
    cfg = dict(cfg, max_iterations=0)
    shape = (4, 3, cfg["dim_t"])
    before = np.random.get_state()[1].copy()
    a = IVectorMachine(ubm, random_state=3, **cfg).fit(train)
    assert np.array_equal(np.random.get_state()[1], before)  # the global generator untouched
    np.testing.assert_array_equal(a.T, np.random.RandomState(3).normal(0.0, 1.0, shape))
    b = IVectorMachine(ubm, random_state=np.random.RandomState(3), **cfg).fit(train)
    np.testing.assert_array_equal(a.T, b.T)
    g = IVectorMachine(ubm, random_state=np.random.default_rng(3), **cfg).fit(train)
    np.testing.assert_array_equal(g.T, np.random.default_rng(3).normal(0.0, 1.0, shape))
    # None draws from the global RandomState: exactly C*D*R normals are consumed
    np.random.seed(11)
    IVectorMachine(ubm, **cfg).fit(train)
    after_fit = np.random.normal()
    np.random.seed(11)
    np.random.normal(size=shape)
    assert after_fit == np.random.normal()
    with pytest.raises(TypeError, match="random_state"):
        IVectorMachine(ubm, random_state="seed", **cfg).fit(train)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_batches_give_the_same_result(trained, batch_size):
    reference, train, test = trained["wide"]
    ubm, cfg, seed, _, _ = load_set("wide")
    machine = IVectorMachine(ubm, random_state=seed, batch_size=batch_size, **cfg).fit(train)
    assert max_rel_diff(machine.T, reference.T) <= 1e-10
    assert max_rel_diff(machine.sigma, reference.sigma) <= 1e-10
    assert max_rel_diff(machine.transform(test), reference.transform(test)) <= 1e-10


@pytest.mark.parametrize("npartitions", [1, 3, 7])
def test_dask_bag_gives_the_same_result_as_the_list(trained, npartitions):
    import dask
    import dask.bag as db

    reference, train, _ = trained["small"]
    ubm, cfg, seed, _, _ = load_set("small")
    with dask.config.set(scheduler="threads"):
        bag = db.from_sequence(train, npartitions=npartitions)
        machine = IVectorMachine(ubm, random_state=seed, **cfg).fit(bag)
        stats_bag = e_step(machine, bag)
        ivectors = np.array(machine.transform(bag).compute())
    assert max_rel_diff(machine.T, reference.T) <= 1e-10
    assert max_rel_diff(machine.sigma, reference.sigma) <= 1e-10
    assert_parity(ivectors, machine.transform(train), tol=1e-12)
    stats_list = e_step(machine, train)
    assert stats_bag.n_sessions == stats_list.n_sessions == len(train)
    assert max_rel_diff(stats_bag.nij_sigma_wij2, stats_list.nij_sigma_wij2) <= 1e-10


def test_ivector_stats_are_additive():
    ubm, cfg, seed, train, _ = load_set("small")
    machine = IVectorMachine(ubm, random_state=seed, **dict(cfg, max_iterations=1)).fit(train)
    whole = e_step(machine, train)
    parts = e_step(machine, train[:7]) + e_step(machine, train[7:])
    for field in IVectorStats._FIELDS:
        assert_parity(getattr(parts, field), getattr(whole, field), tol=1e-12)
    acc = IVectorStats(*whole.shape)
    acc += whole
    assert sum([whole]) is whole
    np.testing.assert_array_equal(acc.nij_sigma_wij2, whole.nij_sigma_wij2)
    with pytest.raises(ValueError, match="different shapes"):
        whole + IVectorStats(1, 1, 1)


def test_projection_cache_follows_parameter_changes(trained):
    machine, train, _ = trained["small"]
    machine = pickle.loads(pickle.dumps(machine))
    before = machine.project(train[0])
    with pytest.raises(ValueError, match="read-only"):
        machine.T *= 2.0  # T cannot change in place (a new array must be assigned)
    machine.T = machine.T * 2.0  # a new T: the cached constants are not reused
    doubled = machine.project(train[0])
    machine.T = machine.T / 2.0
    assert_parity(machine.project(train[0]), before, tol=1e-12)
    assert not np.allclose(doubled, before)


# ---------------------------------------------------------------------------------------------
# estimator conventions and persistence
# ---------------------------------------------------------------------------------------------


def test_params_clone_and_pickle(trained, tmp_path):
    machine, train, test = trained["small"]
    params = machine.get_params(deep=False)
    assert set(params) == {"ubm", "dim_t", "convergence_threshold", "max_iterations", "update_sigma",
                           "variance_floor", "random_state", "batch_size", "checkpoint"}
    copy = clone(machine)
    assert copy.T is None and copy.ubm is not machine.ubm
    assert_parity(copy.fit(train).T, machine.T, tol=1e-12)  # the clone keeps a trained UBM
    restored = pickle.loads(pickle.dumps(machine))
    assert "_projection_cache" not in restored.__dict__
    np.testing.assert_array_equal(restored.transform(test), machine.transform(test))


def test_hdf5_round_trip(trained, tmp_path):
    machine, _, test = trained["wide"]
    machine.convergence_threshold = 1e-4
    path = tmp_path / "ivector.h5"
    machine.save(str(path))
    loaded = IVectorMachine.from_hdf5(str(path))
    machine.convergence_threshold = None
    assert loaded.convergence_threshold == 1e-4 and loaded.random_state == 2
    assert loaded.max_iterations == machine.max_iterations and loaded.batch_size is None
    np.testing.assert_array_equal(loaded.T, machine.T)
    np.testing.assert_array_equal(loaded.sigma, machine.sigma)
    np.testing.assert_array_equal(loaded.ubm.means, machine.ubm.means)
    np.testing.assert_array_equal(loaded.transform(test), machine.transform(test))
    import h5py

    with h5py.File(path, "r") as f:
        assert f.attrs["emkit_class"] == "IVectorMachine" and int(f.attrs["emkit_format_version"]) == 1
        assert "ubm" in f and f["T"].shape == machine.T.shape
    other = IVectorMachine(GMMMachine(2))
    other.load(str(path))
    np.testing.assert_array_equal(other.T, machine.T)
    untrained = IVectorMachine(machine.ubm, dim_t=3)
    untrained.save(str(tmp_path / "untrained.h5"))
    assert IVectorMachine.from_hdf5(str(tmp_path / "untrained.h5")).T is None


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input_errors():
    ubm, cfg, seed, train, _ = load_set("small")
    with pytest.raises(ValueError, match="dim_t"):
        IVectorMachine(ubm, dim_t=0).fit(train)
    with pytest.raises(ValueError, match="max_iterations"):
        IVectorMachine(ubm, max_iterations=-1).fit(train)
    with pytest.raises(ValueError, match="X is empty"):
        IVectorMachine(ubm).fit([])
    with pytest.raises(TypeError, match="single GMMStats"):
        IVectorMachine(ubm).fit(train[0])
    with pytest.raises(TypeError, match=re.escape("X[2] must be a GMMStats")):
        IVectorMachine(ubm, max_iterations=1).fit(train[:2] + [np.zeros(3)] + train[2:])
    wrong = GMMStats(4, 2)
    with pytest.raises(ValueError, match=re.escape("X[0] has statistics of shape")):
        IVectorMachine(ubm).fit([wrong] + train)
    with pytest.raises(ValueError, match=re.escape("X[5] has statistics of shape")):
        IVectorMachine(ubm, max_iterations=1).fit(train[:5] + [wrong])
    bad = train[0].copy()
    bad.sum_px = bad.sum_px.copy()
    bad.sum_px[0, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape("NaN or infinity: X[1].sum_px")):
        IVectorMachine(ubm, max_iterations=1).fit([train[1], bad])
    bad = train[0].copy()
    bad.n[0] = -5.0
    with pytest.raises(ValueError, match=re.escape("X holds a negative occupancy: X[1].n[0] = -5.0")):
        IVectorMachine(ubm, max_iterations=1).fit([train[1], bad])
    with pytest.raises(ValueError, match="ubm must be a trained GMMMachine"):
        IVectorMachine(GMMMachine(4)).fit(train)
    with pytest.raises(TypeError, match="ubm must be a trained GMMMachine"):
        IVectorMachine(None).fit(train)
    machine = IVectorMachine(ubm, dim_t=2)
    with pytest.raises(NotFittedError, match="call fit"):
        machine.project(train[0])
    with pytest.raises(NotFittedError, match="call fit"):
        machine.transform(train)
    machine.fit(train)
    with pytest.raises(ValueError, match=re.escape("stats has statistics of shape")) as info:
        machine.project(wrong)
    assert "(4, 2)" in str(info.value)
    with pytest.raises(TypeError, match="stats must be a GMMStats"):
        machine.project(train)


def test_shared_accumulator_path_for_large_models(trained, monkeypatch):
    """Above a size threshold the threads split each batch and share one accumulator."""
    import emkit.ivector._batching as module

    reference, train, _ = trained["wide"]
    ubm, cfg, seed, _, _ = load_set("wide")
    monkeypatch.setattr(module, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    machine = IVectorMachine(ubm, random_state=seed, batch_size=4, **cfg).fit(train)
    assert max_rel_diff(machine.T, reference.T) <= 1e-10
    assert max_rel_diff(machine.sigma, reference.sigma) <= 1e-10


def test_empty_dask_bag_is_reported():
    import dask
    import dask.bag as db

    ubm, cfg, seed, _, _ = load_set("small")
    with dask.config.set(scheduler="sync"), pytest.raises(ValueError, match="X is empty"):
        IVectorMachine(ubm, random_state=seed, **cfg).fit(db.from_sequence([], npartitions=1))


def test_partial_sums_received_from_workers_add_in_place_in_tree_order():
    import copy

    from emkit._backend import tree_sum
    from emkit._backend._kept import _sum_received

    ubm, cfg, seed, train, _ = load_set("small")
    machine = IVectorMachine(ubm, random_state=seed, **dict(cfg, max_iterations=1)).fit(train)
    parts = [e_step(machine, train[i::5]) for i in range(5)]
    expected = tree_sum(copy.deepcopy(parts))
    received = copy.deepcopy(parts)
    got = _sum_received(received)
    assert got is received[0]  # accumulated into the first part, not into fresh arrays
    for field in IVectorStats._FIELDS:
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))
    # a part whose arrays cannot be written is left alone: the sum goes to fresh arrays
    frozen = copy.deepcopy(parts)
    frozen[0].fnorm_sigma_wij.flags.writeable = False
    kept = frozen[0].fnorm_sigma_wij.copy()
    got = _sum_received(frozen)
    assert got is not frozen[0]
    np.testing.assert_array_equal(frozen[0].fnorm_sigma_wij, kept)
    np.testing.assert_array_equal(got.fnorm_sigma_wij, expected.fnorm_sigma_wij)
    # plain arrays (whose dtypes may differ) are added by tree_sum
    arrays = [np.ones(3, dtype=np.int64), np.full(3, 0.5)]
    np.testing.assert_array_equal(_sum_received(arrays), np.full(3, 1.5))
    assert arrays[0].dtype == np.int64 and arrays[0][0] == 1


def test_module_m_step_names_statistics_of_another_shape_and_an_untrained_machine():
    # m_step(machine, IVectorStats of another (C, D, R)) failed with numpy's "boolean index did
    # not match indexed array", and on an untrained machine inside np.asarray(None)
    ubm, cfg, seed, train, _ = load_set("small")
    machine = IVectorMachine(ubm, dim_t=2, max_iterations=1, random_state=0).fit(train)
    C, D = ubm.means.shape
    T = machine.T.copy()
    with pytest.raises(ValueError, match=re.escape(f"stats has shape (C, D, dim_t) = ({C + 1}, {D}, 2); "
                                                   f"the machine needs ({C}, {D}, 2)")):
        m_step(machine, IVectorStats(C + 1, D, 2))
    np.testing.assert_array_equal(machine.T, T)
    with pytest.raises(NotFittedError, match=re.escape("m_step needs a machine whose sigma is set")):
        m_step(IVectorMachine(ubm, dim_t=2), e_step(machine, train))
