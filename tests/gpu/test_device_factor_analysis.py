"""ISVMachine / JFAMachine.fit with the session passes on the configured device.

Without a GPU the device path runs on PyTorch CPU tensors standing in for CUDA (skipped where
torch is missing): the same U, D (and V) as the numpy path within 1e-10, with the statistics
copied once or streamed in blocks.  The ``gpu`` test needs a real CUDA device.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _parity import assert_parity
from factor_analysis_cases import load_case, make_stats, machine

import emkit
from emkit._backend import _device
from emkit.factor_analysis import _device as fa_device
from emkit.factor_analysis import _device_train as fa_device_train




def _fit(kind, d):
    return machine(kind, d).fit(make_stats(d), d["labels"])


def _same(got, expected, kind):
    for name in ("U", "D") + (("V",) if kind == "jfa" else ()):
        value = getattr(got, name)
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
        assert_parity(value, getattr(expected, name), 1e-10)


@pytest.mark.parametrize("kind", ["isv", "jfa"])
@pytest.mark.parametrize("cache, block", [(None, 512), (False, 5)])
def test_fit_on_the_device_equals_numpy(simulated, kind, cache, block, monkeypatch, caplog):
    d = load_case("medium")
    expected = _fit(kind, d)
    monkeypatch.setattr(fa_device, "DEVICE_BLOCK", block)  # several blocks when streaming
    calls = []
    real = fa_device.device_pass  # the device E-step of every pass over the sessions
    monkeypatch.setattr(fa_device, "device_pass",
                        lambda staged, *a: calls.append(staged.dev) or real(staged, *a))
    monkeypatch.setattr(fa_device_train, "device_pass", fa_device.device_pass)
    with emkit.config_context(device="cuda", device_cache=cache), \
            caplog.at_level(logging.INFO, logger="emkit"):
        got = _fit(kind, d)
    assert calls and all(dev is simulated for dev in calls)
    how = "copied to the device once" if cache is None else "streamed to the device"
    logged = [r.message for r in caplog.records if "ISV/JFA fit: statistics of 17" in r.message]
    assert len(logged) == 1 and how in logged[0]  # one decision per fit
    _same(got, expected, kind)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["isv", "jfa"])
def test_gpu_fit_equals_numpy(kind):
    try:
        _device.resolve_device("cuda")
    except _device.DeviceUnavailableError:
        pytest.skip("no CUDA device (PyTorch or CuPy with CUDA) on this machine")
    d = load_case("medium")
    expected = _fit(kind, d)
    with emkit.config_context(device="cuda"):
        _same(_fit(kind, d), expected, kind)
