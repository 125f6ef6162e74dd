"""Loading a model holds one copy of its arrays: the machine keeps the arrays its reader has just
read and checked (it copied them)."""

import gc
import tracemalloc

import numpy as np
import pytest

from emkit import GMMMachine, ISVMachine, IVectorMachine

MB = 2**20


def _ubm(C, D):
    rng = np.random.default_rng(0)
    ubm = GMMMachine(C)
    ubm.means = rng.normal(size=(C, D))
    ubm.variances = rng.uniform(0.5, 2.0, (C, D))
    ubm.weights = np.full(C, 1.0 / C)
    return ubm


# each model holds one array of 40 MB, and little else
def _ivector():
    machine = IVectorMachine(_ubm(100, 50), 1000)
    machine.T = np.random.default_rng(1).normal(size=(100, 50, 1000))
    machine.sigma = np.ones((100, 50))
    return machine, machine.T


def _isv():
    machine = ISVMachine(100, ubm=_ubm(1000, 50))
    machine.U = np.random.default_rng(2).normal(size=(50_000, 100))
    machine.D = np.ones(50_000)
    return machine, machine.U


LARGE = {"IVectorMachine T": _ivector, "ISVMachine U": _isv}


def _traced_peak(run):
    """Peak of the memory traced (tracemalloc) while ``run()`` runs, counting what was allocated
    before it, and what ``run`` returned."""
    gc.collect()
    tracemalloc.reset_peak()
    out = run()
    return tracemalloc.get_traced_memory()[1], out


@pytest.fixture
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


LOADERS = {"IVectorMachine T": IVectorMachine.from_hdf5, "ISVMachine U": ISVMachine.from_hdf5}


@pytest.mark.parametrize("make", list(LOADERS))
def test_load_holds_one_copy_of_the_largest_array(tmp_path, make, traced):
    """Before: the machine copied the arrays its reader had just read (2x T, or U, at the peak)."""
    model, largest = LARGE[make]()
    model.save(tmp_path / "model.h5")
    nbytes = largest.nbytes
    del model, largest
    peak, loaded = _traced_peak(lambda: LOADERS[make](tmp_path / "model.h5"))
    assert peak < 1.3 * nbytes, f"{peak / MB:.1f} MB traced for {nbytes / MB:.1f} MB"
    stored = getattr(loaded, make.split()[-1])
    assert stored.nbytes == nbytes and not stored.flags.writeable
