"""GMM inference, MAP adaptation, GMM-MAP enrolment and dask chunks on a configured device,
simulated by PyTorch on the CPU (``device="cuda"`` resolved to a torch CPU device): numpy
float64 results equal to the numpy path within 1e-10, and :data:`emkit._device_infer.COUNTS`
showing that the device kernels ran."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit import GMMMachine, experiment
from emkit import _device_infer



@pytest.fixture
def fake_cuda(simulated):
    _device_infer.COUNTS.clear()
    return simulated


@pytest.fixture(scope="module")
def ubm():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3)) * 2 + 10.0
    return GMMMachine(4, max_fitting_steps=3, convergence_threshold=None,
                      update_variances=True, update_weights=True).fit(X)


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(6)
    return [rng.normal(size=(int(n), 3)) * 2 + 10.0 for n in rng.integers(5, 60, size=7)]


def close(expected, got, tol=1e-10):
    got = np.asarray(got)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


def same_stats(a, b):
    assert a.t == b.t
    for name in ("log_likelihood", "n", "sum_px", "sum_pxx"):
        close(getattr(a, name), getattr(b, name))


def test_likelihoods_statistics_and_transform_on_the_device(fake_cuda, ubm, sessions):
    X = np.concatenate(sessions)
    cpu = (ubm.log_likelihood(X), ubm.log_weighted_likelihood(X), ubm.acc_stats(X),
           ubm.transform(sessions))
    with emkit.config_context(device="cuda", block_rows=16):  # several blocks per call
        got = (ubm.log_likelihood(X), ubm.log_weighted_likelihood(X), ubm.acc_stats(X),
               ubm.transform(sessions))
    close(cpu[0], got[0])
    close(cpu[1], got[1])
    assert got[1].shape == (4, len(X))
    same_stats(cpu[2], got[2])
    assert len(got[3]) == len(sessions)
    for a, b in zip(cpu[3], got[3]):
        same_stats(a, b)
    counts = _device_infer.COUNTS
    assert counts["gmm log-likelihood"] == 1 and counts["gmm weighted log-likelihood"] == 1
    assert counts["gmm statistics"] == len(sessions)  # one per session (acc_stats: DeviceFrames)


@pytest.mark.parametrize("settings", [dict(map_relevance_factor=4.0),
                                      dict(map_relevance_factor=None, map_alpha=0.3)])
def test_adapt_maps_the_means_on_the_device(fake_cuda, ubm, sessions, settings):
    stats = ubm.transform(sessions)
    expected = GMMMachine(4, trainer="map", ubm=ubm, **settings).adapt(stats)
    with emkit.config_context(device="cuda"):
        got = GMMMachine(4, trainer="map", ubm=ubm, **settings).adapt(stats)
    close(expected.means, got.means)
    close(expected.variances, got.variances, 0)  # the UBM's
    assert _device_infer.COUNTS["map adaptation"] == 1


def test_adapt_of_variances_keeps_the_host_m_step(fake_cuda, ubm, sessions):
    stats = ubm.transform(sessions)
    expected = GMMMachine(4, trainer="map", ubm=ubm, update_variances=True).adapt(stats)
    with emkit.config_context(device="cuda"):
        got = GMMMachine(4, trainer="map", ubm=ubm, update_variances=True).adapt(stats)
    close(expected.means, got.means, 0)
    close(expected.variances, got.variances, 0)
    assert _device_infer.COUNTS["map adaptation"] == 0


def test_gmm_map_enrolment_of_many_models_in_one_call(fake_cuda, ubm, sessions):
    stats = ubm.transform(sessions)
    model_stats = [stats[0:2], stats[2:3], stats[3:7]]
    expected = experiment.enroll(ubm, ["a", "b", "c"], model_stats, relevance_factor=3.0)
    with emkit.config_context(device="cuda"):
        got = experiment.enroll(ubm, ["a", "b", "c"], model_stats, relevance_factor=3.0)
        assert _device_infer.COUNTS["map adaptation"] == 1
        bad = model_stats + [[emkit.GMMStats(3, 3)]]
        with pytest.raises(ValueError, match=r"model_stats\[3\].*\(3, 3\).*\(4, 3\)"):
            experiment.enroll(ubm, list("abcd"), bad)
    close(expected.arrays["means"], got.arrays["means"])
    assert got.arrays["means"].shape == (3, 4, 3)
    assert experiment.score(got, stats).shape == (3, len(stats))


@pytest.mark.parametrize("scheduler", ["sync", "threads", "local-cluster"])
def test_dask_chunks_run_on_the_device_configured_where_they_run(fake_cuda, scheduler):
    da = pytest.importorskip("dask.array")
    import dask

    rng = np.random.default_rng(8)
    X = rng.normal(size=(900, 3)) + rng.integers(0, 4, size=(900, 1)) * 5.0
    init = dict(means=X[:3].copy(), variances=np.ones((3, 3)), weights=np.full(3, 1 / 3))

    def machine():
        m = GMMMachine(3, max_fitting_steps=4, convergence_threshold=None, update_variances=True,
                       update_weights=True)
        for name, value in init.items():
            setattr(m, name, value)
        return m

    expected = machine().fit(X)
    Xd = da.from_array(X, chunks=(250, 3))  # 4 chunks
    if scheduler == "local-cluster":
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            client.run(emkit.set_config, device="cuda")  # in the workers (same process here)
            try:
                got = machine().fit(Xd)
            finally:
                client.run(emkit.set_config, device="cpu")
    else:
        with emkit.config_context(device="cuda"), dask.config.set(scheduler=scheduler):
            got = machine().fit(Xd)
    for name in ("means", "variances", "weights"):
        close(getattr(expected, name), getattr(got, name))
    assert _device_infer.COUNTS["gmm statistics"] == 4 * 4  # chunks x iterations, on the device


def test_dask_likelihoods_use_the_device(fake_cuda, ubm):
    da = pytest.importorskip("dask.array")
    X = np.random.default_rng(9).normal(size=(120, 3)) + 10.0
    with emkit.config_context(device="cuda"):
        got = ubm.log_likelihood(da.from_array(X, chunks=(50, 3))).compute()
    close(ubm.log_likelihood(X), got)
    assert _device_infer.COUNTS["gmm log-likelihood"] == 3


@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_isv_jfa_score_matrix_on_the_device(fake_cuda, kind, monkeypatch):
    from factor_analysis_cases import load_case, machine, make_stats

    from emkit.factor_analysis import _device_scoring, _scoring

    d = load_case("medium")
    stats = make_stats(d)
    fitted = machine(kind, d).fit(stats, d["labels"])
    models = [fitted.enroll(stats[i:i + 2]) for i in (0, 3, 6)]
    probes = stats[:5] + [stats[5:7]]  # single sessions and a two-session template
    expected = fitted.score_matrix(models, probes)
    calls = []
    real = _device_scoring.score_matrix
    monkeypatch.setattr(_device_scoring, "score_matrix",
                        lambda *a: calls.append(a[4]) or real(*a))
    monkeypatch.setattr(_scoring, "PROBE_BLOCK", 4)  # two probe blocks
    with emkit.config_context(device="cuda"):
        got = fitted.score_matrix(models, probes)
        broken = [s.copy() for s in stats[:2]]
        broken[1].sum_px[0, 0] = np.nan
        with pytest.raises(ValueError, match="probes"):
            fitted.score_matrix(models, broken)
    assert calls and calls[0] is fake_cuda
    assert got.shape == (3, 6)
    close(expected, got)


def test_kmeans_dask_chunks_run_on_the_device(fake_cuda):
    da = pytest.importorskip("dask.array")
    from emkit import KMeansMachine

    rng = np.random.default_rng(12)
    X = rng.normal(size=(600, 2)) + rng.integers(0, 3, size=(600, 1)) * 6.0

    def machine():
        return KMeansMachine(3, max_iter=3, convergence_threshold=None, random_state=4)

    expected = machine().fit(X)
    exp_var, exp_w = expected.get_variances_and_weights_for_each_cluster(X)
    Xd = da.from_array(X, chunks=(200, 2))
    with emkit.config_context(device="cuda"):
        got = machine().fit(Xd)
        var, w = got.get_variances_and_weights_for_each_cluster(Xd)
    close(expected.centroids_, got.centroids_)
    close(exp_var, var)
    close(exp_w, w)
    assert got.n_iter_ == 3 and _device_infer.COUNTS["k-means statistics"] == 3 * 3 + 3
