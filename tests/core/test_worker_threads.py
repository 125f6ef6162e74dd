"""emkit's own thread pool takes the share of the CPUs that its process was given:
``OMP_NUM_THREADS``, which dask's nanny sets to 1 in every worker process and joblib's loky backend
to ``cpus // n_jobs``, caps it (without the cap, W single-threaded dask workers on C CPUs each
started C threads of emkit's)."""

import threading

import numpy as np
import pytest

from emkit import _cpus
from emkit._backend import map_reduce, n_threads


@pytest.mark.parametrize("value, expected", [
    ("1", 1), ("3", 3), ("4,2", 4), (" 2 ", 2), ("64", 8),  # never above the usable CPUs
    ("", 8), ("0", 8), ("-1", 8), ("two", 8), ("2.5", 8),  # ignored, as OpenMP ignores them
])
def test_omp_num_threads_caps_the_pool(monkeypatch, value, expected):
    monkeypatch.setattr(_cpus, "usable_cpus", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert n_threads() == expected


def test_without_omp_num_threads_the_pool_has_the_usable_cpus(monkeypatch):
    monkeypatch.setattr(_cpus, "usable_cpus", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert n_threads() == 8


def _threads_used(X):
    seen = set()

    def chunk(rows):
        seen.add(threading.get_ident())
        return rows.sum(axis=0)

    return map_reduce(chunk, X), seen


def test_a_process_given_one_thread_runs_emkits_passes_in_the_calling_thread(monkeypatch):
    if _cpus.usable_cpus() < 2:
        pytest.skip("needs two usable CPUs for emkit to start its pool at all")
    X = np.random.default_rng(0).normal(size=(40_000, 3))  # enough rows for two threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    total_pool, pool_threads = _threads_used(X)
    assert pool_threads != {threading.get_ident()}  # the guard: the pool runs it otherwise
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as in a dask worker started by a nanny
    total, used = _threads_used(X)
    assert used == {threading.get_ident()}
    np.testing.assert_allclose(total, X.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(total, total_pool, rtol=1e-12)
