"""Device selection: ``set_config(device=...)`` and the errors when the device is not there.

The library detection is monkeypatched to simulate machines (PyTorch without CUDA, nothing
installed); tests marked ``gpu`` need a real CUDA device and are skipped without one.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import emkit
from emkit._backend import _device

TORCH_CPU = {"version": "2.13.0", "cuda": False, "n_devices": 0, "build": "CPU-only build"}
TORCH_GPU = {"version": "2.13.0", "cuda": True, "n_devices": 1, "build": "CUDA build"}


@pytest.fixture
def machine(monkeypatch):
    def simulate(torch=None, cupy=None):
        monkeypatch.setattr(_device, "detect_libraries", lambda: {"torch": torch, "cupy": cupy})
    return simulate


def test_default_is_cpu_and_numpy():
    assert emkit.get_config()["device"] == "cpu"
    dev = _device.current_device()
    assert dev.is_cpu and dev.xp is np


def test_import_emkit_does_not_import_device_libraries():
    code = ("import sys, emkit; emkit.set_config(device='cpu'); "
            "print(sorted(m for m in ('torch', 'cupy', 'array_api_compat') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cuda_with_cpu_only_torch_names_what_was_found(machine):
    machine(torch=TORCH_CPU)
    with pytest.raises(_device.DeviceUnavailableError) as err:
        emkit.set_config(device="cuda")
    msg = str(err.value)
    assert "device='cuda'" in msg and "no CUDA device is usable" in msg
    assert "torch 2.13.0 (CPU-only build" in msg and "cupy not installed" in msg
    assert emkit.get_config()["device"] == "cpu"  # unchanged after the error


def test_cuda_with_nothing_installed(machine):
    machine()
    with pytest.raises(_device.DeviceUnavailableError,
                       match="torch not installed, cupy not installed"):
        with emkit.config_context(device="cuda:0"):
            pass
    assert emkit.get_config()["device"] == "cpu"


def test_missing_device_index(machine):
    machine(torch=TORCH_GPU)
    with pytest.raises(_device.DeviceUnavailableError, match="CUDA device 3 is not there"):
        emkit.set_config(device="cuda:3")


def test_explicit_library_that_is_missing(machine):
    machine(torch=TORCH_GPU)
    with pytest.raises(_device.DeviceUnavailableError, match="array_library='cupy'"):
        emkit.set_config(device="cuda", array_library="cupy")


def test_auto_falls_back_to_cpu(machine):
    machine(torch=TORCH_CPU)
    with emkit.config_context(device="auto"):
        assert emkit.get_config()["device"] == "auto"
        assert _device.current_device().is_cpu
    assert emkit.get_config()["device"] == "cpu"


@pytest.mark.parametrize("bad, exc, match", [
    ("gpu", ValueError, "device must be 'cpu', 'cuda', 'cuda:N'"),
    ("cuda:x", ValueError, "got 'cuda:x'"),
    (0, TypeError, "device must be a string"),
])
def test_bad_device_values(bad, exc, match):
    with pytest.raises(exc, match=match):
        emkit.set_config(device=bad)


def test_bad_array_library():
    with pytest.raises(ValueError,
                       match="array_library must be 'torch', 'cupy' or None; got 'jax'"):
        emkit.set_config(array_library="jax")


def test_cpu_helpers_round_trip():
    X = np.arange(12.0).reshape(6, 2)
    blocks = list(_device.stream_blocks(X, _device.CPU, 4, dtype=np.float32))
    assert [b.shape for b in blocks] == [(4, 2), (2, 2)] and blocks[0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate(blocks), X)
    assert _device.to_numpy(np.float32([1, 2])).dtype == np.float64


def test_to_numpy_from_strict_namespace():
    xs = pytest.importorskip("array_api_strict")
    a = _device.to_numpy(xs.asarray([1.0, 2.0], dtype=xs.float32))
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.tolist() == [1.0, 2.0]


def _cuda_device():
    try:
        return _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        return None


@pytest.fixture(scope="module")
def cuda():
    dev = _cuda_device()
    if dev is None:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")
    return dev


@pytest.mark.gpu
def test_gpu_stream_blocks_round_trip(cuda):
    X = np.random.default_rng(0).normal(size=(1000, 7))
    blocks = [_device.to_numpy(b) for b in _device.stream_blocks(X, cuda, 300)]
    np.testing.assert_array_equal(np.concatenate(blocks), X)


@pytest.mark.gpu
def test_gpu_plda_scores_equal_cpu(cuda):
    from emkit import PLDA

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)) + np.repeat(rng.normal(size=(20, 8)) * 3, 10, axis=0)
    plda = PLDA(dim_f=3, max_iterations=5).fit(X, np.repeat(np.arange(20), 10))
    expected = plda.log_likelihood_ratio(X[:30], X[30:70])
    with emkit.config_context(device="cuda"):
        got = plda.log_likelihood_ratio(X[:30], X[30:70])
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_plda_scoring_through_the_configured_device(machine, monkeypatch):
    """The whole device path of PLDA.log_likelihood_ratio, with PyTorch CPU tensors standing in
    for the CUDA device (skipped where torch is not installed)."""
    torch = pytest.importorskip("torch")
    from array_api_compat import torch as xp_torch

    from emkit import PLDA

    machine(torch=TORCH_GPU)
    fake = _device.Device("torch", xp_torch, torch.device("cpu"), "cuda:0 (simulated on CPU)")
    monkeypatch.setattr(_device, "_make_device", lambda library, index: fake)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)) + np.repeat(rng.normal(size=(20, 8)) * 3, 10, axis=0)
    plda = PLDA(dim_f=3, max_iterations=5).fit(X, np.repeat(np.arange(20), 10))
    expected = plda.log_likelihood_ratio(X[:30], X[30:70])
    calls = []
    real = _device.to_device
    monkeypatch.setattr(_device, "to_device", lambda x, dev, dtype=None: calls.append(dev) or
                        real(x, dev, dtype))
    with emkit.config_context(device="cuda"):
        got = plda.log_likelihood_ratio(X[:30], X[30:70])
    assert calls and all(d is fake for d in calls)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_copy_once_decision(monkeypatch):
    fake = _device.Device("torch", None, None, "cuda:0")
    monkeypatch.setattr(_device, "free_memory", lambda dev: 1000)
    assert _device.copy_once(500, fake) and not _device.copy_once(501, fake)
    assert _device.copy_once(10**9, fake, True) and not _device.copy_once(1, fake, False)
    assert not _device.copy_once(1, _device.CPU)  # nothing to cache on the CPU


def test_device_cache_setting():
    with emkit.config_context(device_cache=False):
        assert emkit.get_config()["device_cache"] is False
    assert emkit.get_config()["device_cache"] is None
    with pytest.raises(ValueError, match="device_cache must be None, True or False; got 'yes'"):
        emkit.set_config(device_cache="yes")
