"""GMMMachine.fit (ML and MAP), KMeansMachine.fit and linear_scoring on a device: with PyTorch
CPU tensors as input, and with ``set_config(device="cuda")`` simulated by a PyTorch CPU device
(data copied once, or streamed block by block).  Fitted parameters are numpy float64 and equal
to the numpy path's within 1e-10 (float64).  Tests marked ``gpu`` need a CUDA device."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

import emkit
from emkit import GMMMachine, KMeansMachine, linear_scoring
from emkit._backend import _device
from emkit._device_fit import fit_device


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(5, 3)) * 4 + 50.0
    X = centres[rng.integers(0, 5, 600)] + rng.normal(size=(600, 3))
    return X


def close(expected, got, tol=1e-10):
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


def gmm(**kw):
    return GMMMachine(5, max_fitting_steps=6, convergence_threshold=None, update_variances=True,
                      update_weights=True, **kw)


def same_gmm(a, b, tol=1e-10):
    for name in ("means", "variances", "weights"):
        close(getattr(a, name), getattr(b, name), tol)


@pytest.fixture
def fake_cuda(simulated, monkeypatch):
    """``device="cuda"`` resolves to PyTorch on the CPU (host tensors: no pinned buffers, side
    streams or free-memory query, see ``_backend/_staging.py``); ``streamed`` records the rows
    copied block by block."""
    from emkit import _device_fit

    fake = simulated
    streamed = []
    real = _device_fit.DeviceFrames._stream

    def stream(self, X, rows):
        for block in real(self, X, rows):
            streamed.append(block.shape[0])
            yield block

    monkeypatch.setattr(_device_fit.DeviceFrames, "_stream", stream)
    return SimpleNamespace(dev=fake, streamed=streamed)


def test_numpy_input_on_the_cpu_takes_the_numpy_path(data):
    assert fit_device(data) is None and fit_device(data.tolist()) is None


def test_gmm_ml_fit_with_torch_tensors(data):
    torch = pytest.importorskip("torch")
    expected = gmm().fit(data)
    with emkit.config_context(block_rows=128):  # several blocks per E-step
        got = gmm().fit(torch.from_numpy(data.copy()))
    same_gmm(expected, got)
    assert got.n_iter_ == expected.n_iter_ == 6


def test_gmm_map_fit_with_torch_tensors(data):
    torch = pytest.importorskip("torch")
    ubm = gmm().fit(data)
    enrol = data[:150] + 0.3
    expected = GMMMachine(5, trainer="map", ubm=ubm, max_fitting_steps=3).fit(enrol)
    got = GMMMachine(5, trainer="map", ubm=ubm, max_fitting_steps=3).fit(torch.from_numpy(enrol))
    same_gmm(expected, got)


def test_kmeans_fit_with_torch_tensors(data):
    torch = pytest.importorskip("torch")
    expected = KMeansMachine(5, max_iter=5, convergence_threshold=None).fit(data)
    got = KMeansMachine(5, max_iter=5, convergence_threshold=None).fit(torch.from_numpy(data))
    close(expected.centroids_, got.centroids_)
    assert got.average_min_distance == pytest.approx(expected.average_min_distance, rel=1e-12)
    v0, w0 = expected.get_variances_and_weights_for_each_cluster(data)
    v1, w1 = got.get_variances_and_weights_for_each_cluster(torch.from_numpy(data))
    close(v0, v1)
    close(w0, w1)


def test_kmeans_fit_with_array_api_strict_input(data):
    xs = pytest.importorskip("array_api_strict")
    expected = KMeansMachine(5, max_iter=3, convergence_threshold=None).fit(data)
    got = KMeansMachine(5, max_iter=3, convergence_threshold=None).fit(xs.asarray(data))
    close(expected.centroids_, got.centroids_)


@pytest.mark.parametrize("cache", [True, False])
def test_gmm_fit_on_the_configured_device(data, fake_cuda, cache, caplog):
    expected = gmm().fit(data)
    with emkit.config_context(device="cuda", device_cache=cache, block_rows=100):
        with caplog.at_level(logging.INFO, logger="emkit"):
            got = gmm().fit(data)
    same_gmm(expected, got)
    how = "copied to the device once" if cache else "streamed to the device block by block"
    assert any(r.message.startswith("GMM ML: 600 x 3 frames in float64") and
               "on cuda:0 (simulated on CPU) (torch)" in r.message and how in r.message
               for r in caplog.records)
    assert bool(fake_cuda.streamed) == (not cache) and set(fake_cuda.streamed) <= {100}


def test_automatic_copy_once_decision_is_logged(data, fake_cuda, caplog):
    with emkit.config_context(device="cuda"), caplog.at_level(logging.INFO, logger="emkit"):
        KMeansMachine(5, max_iter=2, convergence_threshold=None).fit(data)
    assert not fake_cuda.streamed
    assert any(r.message.startswith("k-means: 600 x 3 frames in float64 (0.0 MB) on cuda:0") and
               "copied to the device once (device_cache=None" in r.message for r in caplog.records)


def test_gmm_float32_on_the_configured_device(data, fake_cuda):
    expected = gmm(compute_dtype="float32").fit(data)
    with emkit.config_context(device="cuda", device_cache=True):
        got = gmm(compute_dtype="float32").fit(data)
    same_gmm(expected, got, 1e-5)


def test_device_ml_threshold_zero_with_a_gaussian_without_frames_names_the_threshold(data, fake_cuda):
    m = gmm(mean_var_update_threshold=0.0)
    m.means = np.vstack([data[:4], np.full((1, 3), 1e4)])  # the last Gaussian: no frame near it
    m.variances, m.weights = np.ones((5, 3)), np.full(5, 0.2)
    with emkit.config_context(device="cuda", device_cache=True):
        with pytest.raises(ValueError, match=r"mean_var_update_threshold=0\.0: a Gaussian received no"):
            m.fit(data)


@pytest.mark.parametrize("dtype, far", [("float64", 1e160), ("float32", 3e19)])
def test_device_likelihoods_of_overflowing_frames_are_minus_inf_as_on_the_cpu(data, fake_cuda, dtype, far):
    m = gmm(compute_dtype=dtype).fit(data)
    X = data[:4].copy()
    X[2, 1] = far
    expected = m.log_likelihood(X)
    assert np.isneginf(expected[2])
    with emkit.config_context(device="cuda", device_cache=False):
        got = m.log_likelihood(X)
        with pytest.raises(ValueError, match="squared distances overflow"):
            m.acc_stats(X)
    np.testing.assert_array_equal(np.isneginf(got), [False, False, True, False])
    np.testing.assert_allclose(got[[0, 1, 3]], expected[[0, 1, 3]], rtol=1e-12 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("cache", [True, False])
def test_device_collapsed_gaussian_likelihoods_and_fit_as_on_the_cpu(data, fake_cuda, cache):
    """A Gaussian collapsed onto a frame far from the others: its log-likelihoods are computed
    directly on the device too (the expanded square is off by about 0.1 nat here)."""
    X = np.vstack([data, np.tile(data[:1] + 30.0, (20, 1))])

    def machine():
        m = gmm()
        m.means = np.vstack([data[[0, 100, 200, 300]], data[:1] + 30.0])
        m.variances = np.vstack([np.ones((4, 3)), np.full((1, 3), 1e-12)])
        m.weights = np.full(5, 0.2)
        return m

    m = machine()
    expected_ll, expected = m.log_likelihood(X[-3:]), machine().fit(X)
    with emkit.config_context(device="cuda", device_cache=cache):
        got_ll = m.log_likelihood(X[-3:])
        got = machine().fit(X)
    np.testing.assert_allclose(got_ll, expected_ll, rtol=1e-12)
    same_gmm(expected, got)


def test_kmeans_and_map_on_the_configured_device(data, fake_cuda):
    ubm = gmm().fit(data)
    expected_km = KMeansMachine(5, max_iter=4, convergence_threshold=None).fit(data)
    expected_map = GMMMachine(5, trainer="map", ubm=ubm, max_fitting_steps=2).fit(data[:100])
    with emkit.config_context(device="cuda", device_cache=False, block_rows=64):
        km = KMeansMachine(5, max_iter=4, convergence_threshold=None).fit(data)
        adapted = GMMMachine(5, trainer="map", ubm=ubm, max_fitting_steps=2).fit(data[:100])
    close(expected_km.centroids_, km.centroids_)
    same_gmm(expected_map, adapted)


def test_linear_scoring_on_the_configured_device(data, fake_cuda, monkeypatch):
    ubm = gmm().fit(data)
    models = [GMMMachine(5, trainer="map", ubm=ubm, max_fitting_steps=1).fit(data[i:i + 50])
              for i in (0, 100)]
    probes = ubm.transform([data[200:260], data[300:330], data[400:401]])
    offsets = np.random.default_rng(0).normal(size=(3, 5, 3)) * 0.1
    expected = linear_scoring(models, ubm, probes, offsets, frame_length_normalization=True)
    calls = []
    real = _device.to_device
    monkeypatch.setattr(_device, "to_device", lambda x, dev, dtype=None: calls.append(dev) or
                        real(x, dev, dtype))
    with emkit.config_context(device="cuda"):
        got = linear_scoring(models, ubm, probes, offsets, frame_length_normalization=True)
    assert calls and all(d is fake_cuda.dev for d in calls)
    close(expected, got, 1e-12)


def test_device_input_is_checked():
    torch = pytest.importorskip("torch")
    bad = torch.zeros((10, 3), dtype=torch.float64)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        KMeansMachine(2).fit(bad)
    with pytest.raises(ValueError, match="X must be a non-empty \\(n_samples, n_features\\) array"):
        GMMMachine(2).fit(torch.zeros(5, dtype=torch.float64))
    ubm = GMMMachine(2)
    ubm.means, ubm.variances = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match="X has 4 features, but GMMMachine is expecting 3"):
        GMMMachine(2, trainer="map", ubm=ubm).fit(torch.zeros((5, 4), dtype=torch.float64))


@pytest.fixture(scope="module")
def cuda():
    try:
        return _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")


@pytest.mark.gpu
@pytest.mark.parametrize("cache", [True, False])
def test_gpu_gmm_and_kmeans_fit_equal_cpu(data, cuda, cache):
    expected = gmm().fit(data)
    expected_km = KMeansMachine(5, max_iter=4, convergence_threshold=None).fit(data)
    with emkit.config_context(device="cuda", device_cache=cache, block_rows=256):
        got = gmm().fit(data)
        km = KMeansMachine(5, max_iter=4, convergence_threshold=None).fit(data)
    same_gmm(expected, got)
    close(expected_km.centroids_, km.centroids_)


@pytest.mark.gpu
def test_gpu_tensors_as_input(data, cuda):
    expected = gmm().fit(data)
    got = gmm().fit(_device.to_device(data, cuda))
    same_gmm(expected, got)


@pytest.mark.parametrize("rounds", [5, None])
def test_kmeans_parallel_initialisation_on_the_device(data, fake_cuda, rounds):
    """k-means|| with its candidate scoring on the device picks the numpy path's centroids."""
    expected = KMeansMachine(5, max_iter=0, init_max_iter=rounds).fit(data)
    with emkit.config_context(device="cuda", device_cache=False, block_rows=128):
        got = KMeansMachine(5, max_iter=0, init_max_iter=rounds).fit(data)
    close(expected.centroids_, got.centroids_, 1e-12)
    assert fake_cuda.streamed


def test_kmeans_plusplus_with_device_input(data):
    torch = pytest.importorskip("torch")
    expected = KMeansMachine(5, init_method="k-means++", max_iter=2).fit(data)
    got = KMeansMachine(5, init_method="k-means++", max_iter=2).fit(torch.from_numpy(data))
    close(expected.centroids_, got.centroids_)


def test_kmeans_initialize_with_device_input(data):
    torch = pytest.importorskip("torch")
    a, b = KMeansMachine(5, init_method="random"), KMeansMachine(5, init_method="random")
    a.initialize(data)
    b.initialize(torch.from_numpy(data))
    np.testing.assert_array_equal(a.centroids_, b.centroids_)
