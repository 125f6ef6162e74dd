"""IVectorMachine.fit / transform / project through the configured device.

Without a GPU, the device path runs on PyTorch CPU tensors standing in for the CUDA device (the
library detection and device construction are monkeypatched; skipped where torch is missing):
the same T, sigma, log-likelihoods and i-vectors as the numpy path within 1e-10, with the
statistics copied once or streamed.  The ``gpu`` tests need a real CUDA device.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _ivector_batching import problem
from _parity import assert_parity

import emkit
from emkit import IVectorMachine
from emkit._backend import _device




@pytest.fixture(scope="module")
def cpu_fit():
    ubm, stats, cfg = problem(S=23)
    machine = IVectorMachine(ubm, batch_size=6, **cfg).fit(stats)
    return ubm, stats, cfg, machine


def _same(machine, expected, stats):
    assert machine.T.dtype == np.float64 and isinstance(machine.sigma, np.ndarray)
    assert_parity(machine.T, expected.T, 1e-10)
    assert_parity(machine.sigma, expected.sigma, 1e-10)
    np.testing.assert_allclose(machine.log_likelihood_, expected.log_likelihood_, rtol=1e-10)


@pytest.mark.parametrize("cache", [None, False])
def test_fit_on_the_device_equals_numpy(simulated, cpu_fit, cache, caplog, monkeypatch):
    ubm, stats, cfg, expected = cpu_fit
    moved = []
    real = _device.to_device
    monkeypatch.setattr(_device, "to_device", lambda x, dev, dtype=None: moved.append(dev) or
                        real(x, dev, dtype))
    with emkit.config_context(device="cuda", device_cache=cache), \
            caplog.at_level(logging.INFO, logger="emkit"):
        machine = IVectorMachine(ubm, batch_size=6, **cfg).fit(stats)
    assert moved and all(d is simulated for d in moved)
    how = "copied to the device once" if cache is None else "streamed to the device"
    assert any("statistics of 23 utterances" in r.message and how in r.message
               for r in caplog.records)
    _same(machine, expected, stats)


def test_transform_and_project_on_the_device_equal_numpy(simulated, cpu_fit):
    ubm, stats, cfg, machine = cpu_fit
    expected = machine.transform(stats)
    one = machine.project(stats[3])
    with emkit.config_context(device="cuda"):
        got = machine.transform(stats)
        got_one = machine.project(stats[3])
        machine.T = machine.T * 1.5  # the device constants follow the parameters
        scaled = machine.transform(stats[:4])
    machine.T = machine.T / 1.5
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert_parity(got, expected, 1e-10)
    assert_parity(got_one, one, 1e-10)
    machine.T = machine.T * 1.5
    assert_parity(scaled, machine.transform(stats[:4]), 1e-10)
    machine.T = machine.T / 1.5


def test_bad_statistics_are_reported_on_the_device_path(simulated, cpu_fit):
    ubm, stats, cfg, _ = cpu_fit
    with emkit.config_context(device="cuda"), pytest.raises(TypeError, match=r"X\[1\]"):
        IVectorMachine(ubm, **cfg).fit([stats[0], "not stats"])


@pytest.mark.gpu
def test_gpu_fit_and_transform_equal_numpy(cpu_fit):
    try:
        _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")
    ubm, stats, cfg, expected = cpu_fit
    with emkit.config_context(device="cuda"):
        machine = IVectorMachine(ubm, batch_size=6, **cfg).fit(stats)
        ivectors = machine.transform(stats)
    _same(machine, expected, stats)
    assert_parity(ivectors, expected.transform(stats), 1e-10)
