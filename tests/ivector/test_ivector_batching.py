"""The E-step's batching (batch size, threads' pieces, shared or per-thread accumulators) does not
change the numbers: T, sigma and i-vectors as emkit computed them before the batching changed
(tests/data/ivector_batching/before.npz, made by the script next to it), within 1e-10."""

import numpy as np
import pytest
from _ivector_batching import problem
from _parity import DATA, assert_parity

import emkit.ivector._batching as module
from emkit import IVectorMachine
from emkit._kernels import ivector as kiv

BEFORE = DATA / "ivector_batching" / "before.npz"


@pytest.fixture(scope="module")
def setup():
    ubm, stats, cfg = problem()
    return ubm, stats, cfg, dict(np.load(BEFORE))


def _check(machine, stats, before):
    assert_parity(machine.T, before["T"], 1e-10)
    assert_parity(machine.sigma, before["sigma"], 1e-10)
    assert_parity(machine.transform(stats), before["ivectors"], 1e-10)


@pytest.mark.parametrize("batch_size", [1, None, 10**6])
def test_batch_size_does_not_change_the_numbers(setup, batch_size):
    ubm, stats, cfg, before = setup
    machine = IVectorMachine(ubm, batch_size=batch_size, **cfg).fit(stats)
    _check(machine, stats, before)


@pytest.mark.parametrize("batch_size", [1, 5, None])
def test_shared_accumulator_and_uncached_paths_same_numbers(setup, monkeypatch, batch_size):
    """Threads splitting each batch (one accumulator) and statistics stacked in every E-step."""
    ubm, stats, cfg, before = setup
    monkeypatch.setattr(module, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    monkeypatch.setattr(module, "_CENTRED_CACHE_BYTES", 0)
    machine = IVectorMachine(ubm, batch_size=batch_size, **cfg).fit(stats)
    _check(machine, stats, before)


def test_default_batch_used_by_fit(setup, monkeypatch):
    """fit's default batch is default_batch_size(C, D, R) (here all utterances in one batch)."""
    ubm, stats, cfg, _ = setup
    seen = []
    real = kiv.accumulate_centred

    def spy(batch, *args, **kwargs):
        seen.append(batch.n.shape[0])
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(kiv, "accumulate_centred", spy)
    monkeypatch.setattr(module, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    IVectorMachine(ubm, **dict(cfg, max_iterations=1)).fit(stats)
    assert kiv.default_batch_size(8, 3, 40) >= len(stats)
    assert seen == [len(stats)]


@pytest.mark.parametrize("batch_size, shared", [(1, False), (4, True), (None, False), (None, True)])
def test_large_rank_batching_same_numbers_as_before(monkeypatch, batch_size, shared):
    """R = 110 (the LAPACK posteriors' recursive triangular inverse, several leaves): batch sizes,
    shared or per-thread accumulators give the numbers of the stacked kernels before them
    (tests/data/ivector_batching/lapack_before.npz, made by the script next to it), within 1e-10."""
    large = dict(C=5, D=3, R=110, S=14, seed=8)
    before = dict(np.load(DATA / "ivector_batching" / "lapack_before.npz"))
    ubm, stats, cfg = problem(**large)
    if shared:
        monkeypatch.setattr(module, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    machine = IVectorMachine(ubm, batch_size=batch_size, **dict(cfg, max_iterations=2)).fit(stats)
    _check(machine, stats, before)
