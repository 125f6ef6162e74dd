"""Where emkit's settings hold: process-wide (every thread), and for work a dask graph carries to
other processes, the caller's settings taken when the graph is built."""

import threading

import dask
import dask.array as da
import numpy as np
import pytest

import emkit
from emkit._kernels import gmm as kg
from emkit._kernels import kmeans as kk


def _recording(monkeypatch, module, name):
    """Patch ``module.name`` to record the block_rows argument of each call ("default": none)."""
    seen, original = [], getattr(module, name)

    def record(X, coef, *args):
        seen.append(args[0] if args else "default")
        return original(X, coef, *args)

    monkeypatch.setattr(module, name, record)
    return seen


def test_the_callers_block_rows_reach_dask_chunks_computed_elsewhere(monkeypatch):
    # before: GMMMachine.log_likelihood/log_weighted_likelihood and KMeansMachine.predict on a
    # dask array read block_rows where each chunk ran (a distributed worker process has its own
    # settings, as has a graph computed after the block ends) and predict ignored it even here
    # (the kernels' default 2048 rows): the caller's block_rows=7 was silently not used
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    gmm = emkit.GMMMachine(2, max_fitting_steps=2).fit(X)
    kmeans = emkit.KMeansMachine(2, max_iter=2).fit(X)
    dX = da.from_array(X, chunks=30)
    with emkit.config_context(block_rows=7):
        lazy = (gmm.log_likelihood(dX), gmm.log_weighted_likelihood(dX), kmeans.predict(dX))
    rows = {name: _recording(monkeypatch, module, name) for module, name in (
        (kg, "log_likelihood"), (kg, "log_weighted_likelihood"), (kk, "assign"))}
    with dask.config.set(scheduler="sync"):
        got = dask.compute(*lazy)
    assert rows == {"log_likelihood": [7, 7], "log_weighted_likelihood": [7, 7], "assign": [7, 7]}
    monkeypatch.undo()
    for g, want in zip(got, (gmm.log_likelihood(X), gmm.log_weighted_likelihood(X),
                             kmeans.predict(X))):
        np.testing.assert_array_equal(g, want)


def test_a_block_that_raises_restores_the_settings_in_every_thread():
    # a guard (passes on the old code too): the settings a block set are gone when it raises,
    # in the thread that raised and in the others, which see the same process-wide settings
    before = emkit.get_config()
    inside, after = {}, {}

    def other_thread(into):
        into["block_rows"] = emkit.get_config()["block_rows"]

    with pytest.raises(RuntimeError, match="in the block"):
        with emkit.config_context(block_rows=9, progress=not before["progress"]):
            t = threading.Thread(target=other_thread, args=(inside,))
            t.start()
            t.join(10)
            raise RuntimeError("in the block")
    t = threading.Thread(target=other_thread, args=(after,))
    t.start()
    t.join(10)
    assert inside == {"block_rows": 9} and after == {"block_rows": before["block_rows"]}
    assert emkit.get_config() == before


def test_blocks_opened_and_closed_by_many_threads_at_once_leave_the_settings_as_they_were():
    # a guard (passes on the old code too): 8 threads x 200 blocks, each checking that its own
    # setting is not the one of a block that closed
    before = emkit.get_config()
    failures = []

    def worker(k):
        for _ in range(200):
            with emkit.config_context(gselect_top_k=k + 1):
                if emkit.get_config()["gselect_top_k"] is None:
                    failures.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures and emkit._config._LAYERS == []
    assert emkit.get_config() == before
