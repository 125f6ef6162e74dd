"""ISV and JFA training on a device say how far each pass over the sessions (or JFA's classes)
is, as the numpy path does (INFO, rate-limited, on a clock the test drives: the rows of each
block counted once its work is queued on the device); the trained subspaces are those of a run
that logs nothing.  The device is PyTorch on the CPU standing in for CUDA (skipped where torch
is not installed)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from factor_analysis_cases import synthetic_problem

import emkit
from emkit import _progress
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.factor_analysis import _device as fa_device
from emkit.factor_analysis import _training as training

C, D, S = 4, 2, 12

HALF = " (50.0%), 6.67 s/{}, 40 s elapsed, about 40 s left"


def _machine(kind, ubm):
    if kind == "ISV":
        return ISVMachine(2, em_iterations=1, ubm=ubm, random_state=0)
    return JFAMachine(2, 2, em_iterations=1, ubm=ubm, random_state=0)


def _fit_quiet_then_logged(kind, labels, cache, monkeypatch, caplog):
    """The machines trained without and with progress lines, and the progress lines logged."""
    monkeypatch.setattr(fa_device, "DEVICE_BLOCK", 3)  # 4 blocks of 3 rows on the device
    monkeypatch.setattr(training, "BLOCK_ELEMENTS", 3 * C * D)  # and on the CPU (JFA's y pass)
    monkeypatch.setattr(training, "SESSION_THREADS", 1)
    ubm, stats = synthetic_problem(1, S, C, D)
    with emkit.config_context(device="cuda", device_cache=cache):
        quiet = _machine(kind, ubm).fit(stats, labels)
        ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
        monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = _machine(kind, ubm).fit(stats, labels)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().endswith(" left")]
    return quiet, machine, lines


@pytest.mark.parametrize("cache", [None, False])  # copied once / streamed in blocks
def test_isv_on_a_device_logs_the_sessions_of_its_e_step_and_training_is_unchanged(
        simulated, cache, monkeypatch, caplog):
    quiet, machine, lines = _fit_quiet_then_logged(
        "ISV", np.arange(S) // 2, cache, monkeypatch, caplog)  # 6 speakers of 2 sessions
    assert lines == ["ISV E-step: 6 of 12 sessions" + HALF.format("session")]
    for subspace in ("U", "D"):
        np.testing.assert_array_equal(getattr(machine, subspace), getattr(quiet, subspace))


@pytest.mark.parametrize("cache", [None, False])
def test_jfa_on_a_device_logs_its_v_and_u_e_steps_and_x_pass_and_training_is_unchanged(
        simulated, cache, monkeypatch, caplog):
    quiet, machine, lines = _fit_quiet_then_logged(
        "JFA", np.arange(S), cache, monkeypatch, caplog)  # 12 classes of 1 session
    assert lines == ["JFA V E-step: 6 of 12 classes" + HALF.format("class"),  # on the device
                     "JFA y pass: 6 of 12 classes" + HALF.format("class"),  # on the CPU
                     "JFA U E-step: 6 of 12 sessions" + HALF.format("session"),
                     "JFA x pass: 6 of 12 sessions" + HALF.format("session")]
    for subspace in ("U", "V", "D"):
        np.testing.assert_array_equal(getattr(machine, subspace), getattr(quiet, subspace))
