"""Parameters, E-step constants and accumulators resident on the device between EM iterations:
the number of host->device and device->host copies of a ``fit`` does not grow with the number of
iterations (counted by patching the copy functions, device simulated by PyTorch on the CPU), and
the fitted parameters equal the numpy path's within 1e-12."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit import GMMMachine, KMeansMachine
from emkit import _device_fit
from emkit._backend import _device


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(4, 3)) * 3 + 20.0
    return centres[rng.integers(0, 4, 500)] + rng.normal(size=(500, 3))


def close(expected, got, tol=1e-12):
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


def count_streamed(monkeypatch, counts):
    """Count the block copies of ``stream_blocks`` (host tensors: ``_StagingOps.copy``) as
    host->device copies in ``counts["up"]``."""
    real = _device._StagingOps.copy

    def copy(self, host, stream):
        counts["up"] += 1
        return real(self, host, stream)

    monkeypatch.setattr(_device._StagingOps, "copy", copy)


def count_copies(monkeypatch, up, down) -> dict:
    """Counts of host->device copies (through ``up``, a (module, function name) pair, and the
    blocks streamed) in ``["up"]`` and of device->host copies (``down``, likewise) in
    ``["down"]``."""
    counts = {"up": 0, "down": 0}

    def counted(module, name, key):
        fn = getattr(module, name)

        def wrapper(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(*up, "up")
    counted(*down, "down")
    count_streamed(monkeypatch, counts)
    return counts


def fail_third_e_step(monkeypatch, cls) -> list:
    """``cls.e_step`` raises "interrupted" at its third call (the third iteration of a run);
    returns the list that counts its calls."""
    real, calls = cls.e_step, []

    def e_step(self):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real(self)

    monkeypatch.setattr(cls, "e_step", e_step)
    return calls


@pytest.fixture
def copies(monkeypatch):
    """Counts of host->device (``put``, which the GMM and k-means paths use) and device->host
    (``to_numpy``) copies."""
    return count_copies(monkeypatch, (_device_fit, "put"), (_device, "to_numpy"))


def started(machine, data):
    """``machine`` with the parameters of 2 numpy ML iterations (no initialisation in ``fit``)."""
    init = GMMMachine(4, max_fitting_steps=2, convergence_threshold=None, update_variances=True,
                      update_weights=True).fit(data)
    machine.means, machine.variances, machine.weights = init.means, init.variances, init.weights
    return machine


def ml(steps, **kw):
    return GMMMachine(4, max_fitting_steps=steps, convergence_threshold=None, **kw)


ML_SETTINGS = [dict(update_variances=True, update_weights=True), dict(update_variances=True,
               update_means=False), dict()]


@pytest.mark.parametrize("settings", ML_SETTINGS)
@pytest.mark.parametrize("cache", [True, False])
def test_gmm_ml_copies_do_not_grow_with_iterations(data, simulated, copies, settings, cache):
    counts = []
    for steps in (2, 7):
        expected = started(ml(steps, **settings), data).fit(data)
        machine = started(ml(steps, **settings), data)
        before = dict(copies)
        with emkit.config_context(device="cuda", device_cache=cache, block_rows=128):
            machine.fit(data)
        counts.append((copies["up"] - before["up"], copies["down"] - before["down"]))
        for name in ("means", "variances", "weights"):
            close(getattr(expected, name), getattr(machine, name))
        assert machine.n_iter_ == steps
    (up2, down2), (up7, down7) = counts
    # parameters and constants uploaded once; streamed frames: 4 blocks of <= 128 rows each time
    assert up7 - up2 == (0 if cache else 5 * 4)
    assert down7 - down2 == 5  # one read-back per iteration: the log-likelihood (2 values)


@pytest.mark.parametrize("map_settings", [dict(), dict(map_relevance_factor=None, map_alpha=0.3),
                                          dict(map_relevance_factor=None,
                                               map_alpha=np.linspace(0.1, 0.9, 4))])
@pytest.mark.parametrize("updates", [dict(update_variances=True, update_weights=True),
                                     dict(update_variances=True, update_means=False)])
def test_gmm_map_on_the_device_equals_numpy(data, simulated, copies, map_settings, updates):
    ubm = started(ml(3, update_variances=True, update_weights=True), data).fit(data)
    enrol = data[:120] + 0.2

    def fit(steps):
        return GMMMachine(4, trainer="map", ubm=ubm, max_fitting_steps=steps,
                          convergence_threshold=None, **map_settings, **updates).fit(enrol)

    expected = fit(4)
    ups = []
    for steps in (1, 4):
        before = copies["up"]
        with emkit.config_context(device="cuda", device_cache=True):
            got = fit(steps)
        ups.append(copies["up"] - before)
    assert ups[0] == ups[1]
    for name in ("means", "variances", "weights"):
        close(getattr(expected, name), getattr(got, name))


def test_gmm_array_api_strict_input_equals_numpy(data):
    xs = pytest.importorskip("array_api_strict")
    expected = started(ml(4, update_variances=True, update_weights=True), data).fit(data)
    got = started(ml(4, update_variances=True, update_weights=True), data).fit(xs.asarray(data))
    for name in ("means", "variances", "weights"):
        close(getattr(expected, name), getattr(got, name))


def test_variance_floor_applies_on_the_device(data, simulated):
    def machine():
        m = started(ml(3, update_variances=True, update_weights=True), data)
        m.variance_thresholds = np.array([0.5, 2.0, 0.1])
        return m

    expected = machine().fit(data)
    with emkit.config_context(device="cuda"):
        got = machine().fit(data)
    assert np.any(expected.variances == 2.0)  # the floor is active
    close(expected.variances, got.variances)
    close(expected.means, got.means)


def test_checkpoint_and_interruption_get_the_device_parameters(data, simulated, tmp_path,
                                                                monkeypatch):
    path = tmp_path / "gmm.ckpt.h5"
    two = started(ml(2, update_variances=True), data).fit(data)
    expected = started(ml(3, update_variances=True), data).fit(data)
    calls = fail_third_e_step(monkeypatch, _device_fit.DeviceGMM)
    interrupted = started(ml(3, update_variances=True, checkpoint=path), data)
    resumed = started(ml(3, update_variances=True, checkpoint=path), data)
    with emkit.config_context(device="cuda"):
        with pytest.raises(RuntimeError, match="interrupted"):
            interrupted.fit(data)
        resumed.fit(data)
    close(two.means, interrupted.means)  # the last completed M-step, as on the numpy path
    assert len(calls) == 4  # resumed after iteration 2 (from the checkpoint), ran the third
    close(expected.means, resumed.means)
    close(expected.variances, resumed.variances)


def test_non_finite_statistics_raise_on_the_device(data, simulated):
    machine = started(ml(2), data)
    machine.variances = np.full((4, 3), 1e-300)
    machine.variance_thresholds = 0.0
    with emkit.config_context(device="cuda"), pytest.raises(ValueError, match="non-finite"):
        machine.fit(data + 1e200)


@pytest.mark.parametrize("cache", [True, False])
def test_kmeans_copies_do_not_grow_with_iterations(data, simulated, copies, cache):
    init = data[[0, 1, 2, 3]]  # explicit initial centroids: no initialisation pass
    counts = []
    for steps in (2, 6):
        expected = KMeansMachine(4, init_method=init, max_iter=steps,
                                 convergence_threshold=None).fit(data)
        before = dict(copies)
        with emkit.config_context(device="cuda", device_cache=cache, block_rows=128):
            got = KMeansMachine(4, init_method=init, max_iter=steps,
                                convergence_threshold=None).fit(data)
        counts.append((copies["up"] - before["up"], copies["down"] - before["down"]))
        close(expected.centroids_, got.centroids_)
        assert got.average_min_distance == pytest.approx(expected.average_min_distance,
                                                         rel=1e-12)
    (up2, down2), (up6, down6) = counts
    assert up6 - up2 == (0 if cache else 4 * 4)  # only streamed frame blocks, per iteration
    assert down6 - down2 == 4  # the summed distance and the number of empty clusters


def test_kmeans_empty_clusters_reseeded_on_the_device_as_on_numpy(simulated):
    X = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10], [5, 4.5], [-3, 1.0]])
    init = np.array([[0.0, 0.0], [100.0, 100.0], [10.0, 10.0], [200.0, 0.0], [0.0, 300.0]])
    expected = KMeansMachine(5, init_method=init, max_iter=3, convergence_threshold=None).fit(X)
    with emkit.config_context(device="cuda"):
        got = KMeansMachine(5, init_method=init, max_iter=3, convergence_threshold=None).fit(X)
    np.testing.assert_array_equal(got.centroids_, expected.centroids_)
    assert len({tuple(c) for c in got.centroids_}) == 5  # three empty ones got distinct rows


@pytest.mark.parametrize("cache", [True, False])
def test_ivector_copies_do_not_grow_with_iterations(simulated, monkeypatch, cache):
    from _ivector_batching import problem

    from emkit import IVectorMachine
    from emkit._backend import _staging

    ubm, stats, cfg = problem(S=13)
    counts = count_copies(monkeypatch, (_device, "to_device"), (_staging, "to_host"))
    cfg.pop("max_iterations")
    seen = []
    for steps in (1, 4):
        expected = IVectorMachine(ubm, batch_size=5, max_iterations=steps, **cfg).fit(stats)
        before = dict(counts)
        with emkit.config_context(device="cuda", device_cache=cache):
            got = IVectorMachine(ubm, batch_size=5, max_iterations=steps, **cfg).fit(stats)
        seen.append((counts["up"] - before["up"], counts["down"] - before["down"]))
        close(expected.T, got.T)
        close(expected.sigma, got.sigma)
        np.testing.assert_allclose(got.log_likelihood_, expected.log_likelihood_, rtol=1e-12)
    (up1, down1), (up4, down4) = seen
    assert up4 - up1 == (0 if cache else 3 * 3)  # streamed: 3 batches of <= 5 utterances
    assert down4 == down1 == 2  # T and sigma, once, at the end


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("cache", [None, False])
def test_isv_jfa_u_training_stays_on_the_device(simulated, monkeypatch, kind, cache):
    """U (and JFA's V and D), their constants, the class-level arrays and the accumulators stay
    on the device: the copies of a fit do not grow with the iterations (streamed statistics aside),
    only the three norms of the convergence quantity come back per iteration."""
    from factor_analysis_cases import load_case, machine, make_stats

    from emkit.factor_analysis import _device as fa_device

    d = load_case("medium")
    stats = make_stats(d)
    counts = count_copies(monkeypatch, (_device, "to_device"), (_device, "to_numpy"))
    monkeypatch.setattr(fa_device, "DEVICE_BLOCK", 8)  # 17 sessions: 3 blocks when streamed
    seen = []
    for steps in (2, 5):
        expected = machine(kind, d, em_iterations=steps).fit(stats, d["labels"])
        before = dict(counts)
        with emkit.config_context(device="cuda", device_cache=cache):
            got = machine(kind, d, em_iterations=steps).fit(stats, d["labels"])
        seen.append((counts["up"] - before["up"], counts["down"] - before["down"]))
        for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
            close(getattr(expected, name), getattr(got, name))
    (up2, down2), (up5, down5) = seen
    # per iteration: streamed blocks only (3 of sessions; JFA's V phase: the classes in blocks)
    K = len(np.unique(d["labels"]))
    blocks = 3 + (-(-K // 8) if kind == "jfa" else 0)
    assert up5 - up2 == (0 if cache is None else 3 * blocks)
    # the norms of the relative change, one read per iteration (JFA: of V, U and D)
    assert down5 - down2 == 3 * (3 if kind == "jfa" else 1)


def test_isv_checkpoint_and_interruption_get_the_device_u(simulated, monkeypatch, tmp_path):
    from factor_analysis_cases import load_case, machine, make_stats

    from emkit.factor_analysis import _device_train

    d = load_case("medium")
    stats = make_stats(d)
    path = tmp_path / "isv.ckpt.h5"
    two = machine("isv", d, em_iterations=2).fit(stats, d["labels"])
    expected = machine("isv", d, em_iterations=4).fit(stats, d["labels"])
    calls = fail_third_e_step(monkeypatch, _device_train.DeviceU)
    interrupted = machine("isv", d, em_iterations=4, checkpoint=path)
    with emkit.config_context(device="cuda"):
        with pytest.raises(RuntimeError, match="interrupted"):
            interrupted.fit(stats, d["labels"])
        resumed = machine("isv", d, em_iterations=4, checkpoint=path).fit(stats, d["labels"])
    close(two.U, interrupted.U)  # the last completed M-step, as on the numpy path
    assert len(calls) == 5  # resumed after iteration 2 (from the checkpoint)
    close(expected.U, resumed.U)


def test_jfa_d_update_on_the_device_equals_numpy(simulated):
    """DeviceD's M-step is d_update's, a Gaussian that no class reached keeping its D, and the
    relative change it returns is the host path's."""
    from emkit._fitted import fitted_value, set_fitted
    from emkit.factor_analysis._device_train import DeviceD
    from emkit.factor_analysis._mstep import d_update

    rng = np.random.default_rng(0)
    C, D, K = 3, 4, 5
    centred, N = rng.normal(size=(C, D, K)), rng.uniform(0.5, 3.0, (C, 1, K))
    centred[1], N[1] = 0.0, 0.0  # Gaussian 1: no statistics
    var, D0 = rng.uniform(0.5, 2.0, C * D), rng.uniform(0.1, 1.0, C * D)
    machine = type("Holder", (), {})()
    set_fitted(machine, "D", D0)
    device, host = DeviceD(machine, centred, N, var, simulated), D0
    for _ in range(2):
        new = d_update(centred, N, host, var, 1)
        change = device.m_step(device.e_step())
        assert change == pytest.approx(np.linalg.norm(new - host) / np.linalg.norm(host), rel=1e-12)
        host = new
    assert fitted_value(machine, "D") is not None and np.array_equal(fitted_value(machine, "D"), D0)
    device.sync()
    close(host, fitted_value(machine, "D"))
    assert np.array_equal(host.reshape(C, D)[1], D0.reshape(C, D)[1])
