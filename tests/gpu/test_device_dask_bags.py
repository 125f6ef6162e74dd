"""i-vector, ISV and JFA training from dask bags with the chunk E-steps on the device configured
where each chunk runs (the workers' own configuration), as for the GMM and k-means chunks.

The device is a CUDA device simulated by PyTorch on the CPU; with the synchronous scheduler and
a ``LocalCluster(processes=False)`` the workers share this process (``client.run(set_config)``
configures them).  The chunks on the device are counted; results equal the numpy path's within
1e-12."""

from __future__ import annotations

import numpy as np
import pytest

import emkit

db = pytest.importorskip("dask.bag")
dask = pytest.importorskip("dask")


def close(expected, got, tol=1e-12):
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.fixture
def chunk_calls(monkeypatch):
    """The devices of the device chunk calls of the i-vector and ISV/JFA passes."""
    from emkit.factor_analysis import _device as fa_device
    from emkit.ivector import _device as iv_device

    calls = {"ivector": [], "fa": []}
    real_iv, real_fa = iv_device.chunk_statistics, fa_device.chunk_pass

    def iv(items, pre, batch_size, name, dev, *args, **kwargs):
        calls["ivector"].append(dev)
        return real_iv(items, pre, batch_size, name, dev, *args, **kwargs)

    def fa(*args):
        calls["fa"].append(args[-1])
        return real_fa(*args)

    monkeypatch.setattr(iv_device, "chunk_statistics", iv)
    monkeypatch.setattr(fa_device, "chunk_pass", fa)
    return calls


@pytest.mark.parametrize("scheduler, cache", [("sync", "off"), ("threads", "off"),
                                              ("sync", "memory")])
def test_ivector_bag_chunks_on_the_device(simulated, chunk_calls, scheduler, cache):
    from _ivector_batching import problem

    from emkit import IVectorMachine

    ubm, stats, cfg = problem(S=19)
    with dask.config.set(scheduler=scheduler), emkit.config_context(dask_cache=cache):
        expected = IVectorMachine(ubm, batch_size=4, **cfg).fit(
            db.from_sequence(stats, npartitions=3))
        assert not chunk_calls["ivector"]
        with emkit.config_context(device="cuda"):
            got = IVectorMachine(ubm, batch_size=4, **cfg).fit(
                db.from_sequence(stats, npartitions=3))
    calls, iterations = len(chunk_calls["ivector"]), cfg["max_iterations"]
    # pieces x iterations (3 partitions; the pieces kept on the workers when cached)
    assert calls == 3 * iterations if cache == "off" else calls % iterations == 0 < calls
    assert all(dev is simulated for dev in chunk_calls["ivector"])
    close(expected.T, got.T)
    close(expected.sigma, got.sigma)
    np.testing.assert_allclose(got.log_likelihood_, expected.log_likelihood_, rtol=1e-12)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("cache", ["off", "memory", "disk"])
def test_isv_jfa_bag_chunks_on_the_device(simulated, chunk_calls, kind, cache, tmp_path):
    # (disk: the spilled blocks, read one at a time, go to the device)
    from factor_analysis_cases import load_case, machine, make_stats

    d = load_case("medium")
    X, labels = make_stats(d), [f"c{k}" for k in d["labels"]]
    with dask.config.set(scheduler="sync"), emkit.config_context(dask_cache=cache,
                                                                 spill_directory=tmp_path):
        expected = machine(kind, d).fit(db.from_sequence(X, npartitions=3), labels)
        with emkit.config_context(device="cuda"):
            got = machine(kind, d).fit(db.from_sequence(X, npartitions=3), labels)
    assert chunk_calls["fa"] and all(dev is simulated for dev in chunk_calls["fa"])
    for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
        close(getattr(expected, name), getattr(got, name))


def test_isv_bag_on_a_local_cluster_uses_the_workers_device(simulated, chunk_calls):
    distributed = pytest.importorskip("distributed")
    from factor_analysis_cases import load_case, machine, make_stats

    d = load_case("medium")
    X, labels = make_stats(d), [f"c{k}" for k in d["labels"]]
    expected = machine("isv", d).fit(X, labels)
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.run(emkit.set_config, device="cuda")  # in the workers (same process here)
        try:
            got = machine("isv", d).fit(db.from_sequence(X, npartitions=2), labels)
        finally:
            client.run(emkit.set_config, device="cpu")
    assert chunk_calls["fa"]
    close(expected.U, got.U, 1e-10)  # a dask pass against the in-memory one: summation order
    close(expected.D, got.D, 1e-10)
