"""``GMMMachine.fit`` on a device says how far each E-step is, as the numpy path does (INFO,
rate-limited, on a clock the test drives: frames of all, block by block, copied once or
streamed); the parameters are those of a run that logs nothing.  The device is PyTorch on the
CPU standing in for CUDA (skipped where torch is not installed)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import emkit
from emkit import GMMMachine, _progress


def _machine():
    machine = GMMMachine(3, max_fitting_steps=1)
    machine.means = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    machine.variances = np.ones((3, 2))
    machine.weights = np.full(3, 1 / 3)
    return machine


@pytest.mark.parametrize("cache", [None, False])  # copied once / streamed in blocks
def test_device_estep_logs_the_frames_done_and_fit_is_unchanged(simulated, cache, monkeypatch,
                                                                caplog):
    X = np.random.default_rng(0).standard_normal((1000, 2))
    with emkit.config_context(device="cuda", device_cache=cache, block_rows=200):  # 5 blocks
        quiet = _machine().fit(X)
        ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
        monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = _machine().fit(X)
    assert [r.getMessage() for r in caplog.records if "E-step" in r.getMessage()] == [
        "GMM ML E-step: 400 of 1000 frames (40.0%), 10 frames/s, 40 s elapsed, about 1m00s left",
        "GMM ML E-step: 800 of 1000 frames (80.0%), 10 frames/s, 1m20s elapsed, about 20 s left"]
    for name in ("means", "variances", "weights"):
        np.testing.assert_array_equal(getattr(machine, name), getattr(quiet, name))
