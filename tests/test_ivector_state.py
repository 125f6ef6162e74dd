"""IVectorMachine after issue 12: statistics stacked by ``GMMStats.stack`` give the E-step
statistics emkit computed before (tests/data/ivector_batching/estep_before.npz, made by the script
next to it), read-only T and sigma whose derived constants are dropped on assignment, and the EM
contract (``n_iter_``, ``converged_``)."""

import numpy as np
import pytest
from _ivector_batching import problem
from _parity import DATA, assert_parity

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
