"""IVectorMachine after issue 12: statistics stacked by ``GMMStats.stack`` give the E-step
statistics emkit computed before (tests/data/ivector_batching/estep_before.npz, made by the script
next to it), read-only T and sigma whose derived constants are dropped on assignment, and the EM
contract (``n_iter_``, ``converged_``)."""

import pickle

import numpy as np
import pytest
from _ivector_batching import problem
from _parity import DATA, assert_parity
from sklearn.exceptions import ConvergenceWarning

import emkit.ivector._batching as batching
from emkit import IVectorMachine
from emkit.ivector import e_step

FIELDS = ("nij_sigma_wij2", "fnorm_sigma_wij", "snormij", "nij", "log_likelihood", "n_sessions")
BEFORE = DATA / "ivector_batching"


@pytest.fixture(scope="module")
def setup():
    ubm, stats, cfg = problem()
    before = dict(np.load(BEFORE / "before.npz"))
    return ubm, stats, cfg, before, dict(np.load(BEFORE / "estep_before.npz"))


def _machine(ubm, cfg, before, **kw):
    machine = IVectorMachine(ubm, **dict(cfg, **kw))
    machine.T, machine.sigma = before["T"], before["sigma"]
    return machine


def _assert_same_statistics(acc, estep):
    for field in FIELDS:
        assert_parity(np.asarray(getattr(acc, field)), estep[field], 1e-12)
    assert acc.n_sessions == int(estep["n_sessions"])


@pytest.mark.parametrize("batch_size", [1, 5, None])
def test_stacked_statistics_give_the_estep_of_before(setup, batch_size):
    ubm, stats, cfg, before, estep = setup
    _assert_same_statistics(e_step(_machine(ubm, cfg, before, batch_size=batch_size), stats), estep)


@pytest.mark.parametrize("shared", [False, True])
def test_fit_stacks_once_with_the_same_estep(setup, monkeypatch, shared):
    """fit's statistics, stacked and centred once per fit, give the same E-step as before."""
    from emkit._kernels import ivector as kiv
    from emkit.ivector import _training

    ubm, stats, cfg, before, estep = setup
    if shared:
        monkeypatch.setattr(batching, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    machine = _machine(ubm, cfg, before)
    data = batching._centred_batches(stats, np.asarray(ubm.means), 5, shared=shared)
    assert len(data) > 1
    pre = kiv.Precomputed.from_parameters(np.asarray(ubm.means), machine.T, machine.sigma)
    _assert_same_statistics(_training._accumulate(data, pre, 5, "X"), estep)


@pytest.mark.parametrize("centred", [True, False])
def test_recycled_constants_accumulators_and_scratch_give_the_same_estep(setup, monkeypatch,
                                                                         centred):
    """fit hands each E-step the arrays of the one before (constants, accumulators, scratch),
    holding stale numbers, NaN here: they are overwritten, never added to (statistics stacked
    once, ``centred``, or in every E-step)."""
    from emkit._kernels import ivector as kiv
    from emkit._kernels import packed as pk
    from emkit.ivector import _training

    ubm, stats, cfg, before, estep = setup
    monkeypatch.setattr(batching, "_MAX_ACCUMULATOR_PER_THREAD", 0)  # the recycling path
    means = np.asarray(ubm.means)
    data = batching._centred_batches(stats, means, 5, shared=True) if centred else list(stats)
    machine = _machine(ubm, cfg, before)
    stale_pre = kiv.Precomputed.from_parameters(means, machine.T * 3, machine.sigma * 2)
    pre = kiv.Precomputed.from_parameters(means, machine.T, machine.sigma, reuse=stale_pre)
    assert pre.tt_lower is stale_pre.tt_lower  # overwritten, not reallocated
    stale, scratch = _training._accumulate(data, pre, 5, "X"), {}
    for array in (stale._packed_second_order(), stale.fnorm_sigma_wij, stale.snormij, stale.nij):
        array.fill(np.nan)
    for _ in range(2):  # the scratch of the first E-step is reused by the second
        acc = _training._accumulate(data, pre, 5, "X", recycle=stale, scratch=scratch)
        assert acc is stale
        second = acc._packed_second_order()[:, pk.symmetric_index(machine.dim_t)]
        assert_parity(second.reshape(estep["nij_sigma_wij2"].shape), estep["nij_sigma_wij2"], 1e-12)
        for field in FIELDS[1:]:  # without expanding the packed accumulator: still recyclable
            assert_parity(np.asarray(getattr(acc, field)), estep[field], 1e-12)
    assert scratch and "packed" not in scratch  # kept scratch, not the accumulator
    empty = _training._estep_chunk([], pre, 5, recycle=acc)  # no batch: zeros, not stale sums
    assert empty is acc and not empty.nij.any() and not empty.nij_sigma_wij2.any()


# ---------------------------------------------------------------------------------------------
# fitted state: read-only T and sigma, derived constants dropped on assignment
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(setup):
    ubm, stats, cfg, _, _ = setup
    return IVectorMachine(ubm, **dict(cfg, max_iterations=2)).fit(stats), stats


def test_init_stores_its_parameters_only(setup):
    ubm, _, cfg, _, _ = setup
    machine = IVectorMachine(ubm, **cfg)
    assert set(vars(machine)) == set(machine.get_params(deep=False))
    assert machine.T is None and machine.sigma is None and machine.dim_c is None


@pytest.mark.parametrize("name", ["T", "sigma"])
def test_parameters_read_only_and_derived_constants_dropped(fitted, name):
    machine, stats = fitted
    machine = pickle.loads(pickle.dumps(machine))
    value = getattr(machine, name)
    assert not value.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        value[...] = 0.0
    before = machine.project(stats[0])
    assert "projection" in machine.__dict__["_derived_cache"]
    setattr(machine, name, value * 2.0)
    assert "_derived_cache" not in machine.__dict__
    changed = machine.project(stats[0])
    assert not np.allclose(changed, before)
    fresh = IVectorMachine(machine.ubm, dim_t=machine.dim_t)
    fresh.T, fresh.sigma = machine.T, machine.sigma
    np.testing.assert_array_equal(changed, fresh.project(stats[0]))


@pytest.mark.parametrize("value, shown", [(0.0, "0.0"), (-1.0, "-1.0")])
def test_an_assigned_sigma_that_is_not_positive_is_refused_when_used(fitted, value, shown):
    # the reference projected with 1/sigma: every i-vector NaN, with numpy's warnings only
    machine, stats = fitted
    machine = pickle.loads(pickle.dumps(machine))
    sigma = np.array(machine.sigma)
    sigma[1, 2] = value
    machine.sigma = sigma
    match = rf"IVectorMachine.sigma must be > 0 \(variances\); got {shown} at index \(1, 2\)"
    for use in (lambda: machine.project(stats[0]), lambda: machine.transform(stats[:3])):
        with pytest.raises(ValueError, match=match):
            use()
    sigma[1, 2] = 0.5  # a positive sigma is used as given
    machine.sigma = sigma
    assert np.isfinite(machine.transform(stats[:3])).all()


def test_assigned_array_is_copied(fitted):
    machine, _ = fitted
    T = np.array(machine.T)
    other = IVectorMachine(machine.ubm, dim_t=machine.dim_t)
    other.T = T
    T[...] = 0.0
    assert other.T.flags.writeable is False and np.array_equal(other.T, machine.T)


def test_ubm_means_change_recomputes_the_projection(fitted):
    machine, stats = fitted
    machine = pickle.loads(pickle.dumps(machine))
    before = machine.project(stats[0])
    machine.ubm.means = machine.ubm.means + 0.5
    fresh = pickle.loads(pickle.dumps(machine))  # no cache
    assert "_derived_cache" not in fresh.__dict__
    shifted = machine.project(stats[0])
    assert not np.allclose(shifted, before)
    np.testing.assert_array_equal(shifted, fresh.project(stats[0]))


def test_load_drops_the_constants_of_the_replaced_parameters(fitted, tmp_path):
    machine, stats = fitted
    other = pickle.loads(pickle.dumps(machine))
    other.T = machine.T * 3.0
    other.save(str(tmp_path / "other.h5"))
    target = pickle.loads(pickle.dumps(machine))
    target.project(stats[0])  # constants of machine's T cached
    target.load(str(tmp_path / "other.h5"))
    np.testing.assert_array_equal(target.project(stats[0]), other.project(stats[0]))


def test_pickle_leaves_the_derived_constants_out(fitted):
    machine, stats = fitted
    machine.project(stats[0])
    restored = pickle.loads(pickle.dumps(machine))
    assert "_derived_cache" not in restored.__dict__
    assert not restored.T.flags.writeable and not restored.sigma.flags.writeable


# ---------------------------------------------------------------------------------------------
# EM contract and persistence through the registry
# ---------------------------------------------------------------------------------------------


def test_n_iter_and_converged_after_fit(setup):
    ubm, stats, cfg, _, _ = setup
    capped = IVectorMachine(ubm, **dict(cfg, max_iterations=3)).fit(stats)
    assert capped.n_iter_ == 3 and capped.converged_ is False and len(capped.log_likelihood_) == 3
    loose = IVectorMachine(ubm, **dict(cfg, max_iterations=10, convergence_threshold=1.0))
    loose.fit(stats)
    assert loose.n_iter_ == 2 and loose.converged_ is True  # the first iteration is never tested
    with pytest.warns(ConvergenceWarning, match="IVector did not converge in 2 iterations"):
        strict = IVectorMachine(ubm, **dict(cfg, max_iterations=2, convergence_threshold=0.0))
        strict.fit(stats)
    assert strict.n_iter_ == 2 and strict.converged_ is False


def test_registry_round_trip_and_io_imports_no_estimator(fitted, tmp_path):
    import ast
    import os
    import pathlib
    import subprocess
    import sys

    import emkit.io

    machine, stats = fitted
    path = tmp_path / "iv.h5"
    emkit.io.save(machine, str(path))
    loaded = emkit.io.load(str(path))
    assert type(loaded) is IVectorMachine and loaded.dim_c == machine.dim_c
    np.testing.assert_array_equal(loaded.transform(stats), machine.transform(stats))
    code = ("import sys, emkit.io.ivector; "
            "print(sorted(m for m in sys.modules if m.startswith('emkit.') and '.io' not in m))")
    src = str(pathlib.Path(emkit.io.__file__).parents[2])  # this checkout's emkit, not another
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    # (emkit._describe, how values are shown in messages, and emkit._cpus, which `import emkit`
    # loads to read OMP_NUM_THREADS at once, import nothing of emkit)
    assert set(ast.literal_eval(out.stdout)) <= {"emkit._describe", "emkit._cpus"}, out.stdout
