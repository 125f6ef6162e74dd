"""``IVectorMachine.fit`` and ``transform`` on a device say how far they are as the CPU path
does (INFO, rate-limited, on a clock the test drives): utterances of each E-step, i-vectors
projected, a summary; the results are those of a run that logs nothing.  The device is PyTorch
on the CPU standing in for CUDA (skipped where torch is not installed)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _ivector_batching import problem

import emkit
from emkit import IVectorMachine, _progress
from emkit.ivector import _device as ivector_device


def _ticking(monkeypatch, seconds: int = 20) -> None:
    ticks = iter(range(0, 10**6, seconds))  # one reading of the clock per batch
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))


@pytest.mark.parametrize("cache", [None, False])  # copied once / streamed in batches
def test_device_estep_logs_the_utterances_sent_and_fit_is_unchanged(simulated, cache,
                                                                    monkeypatch, caplog):
    ubm, stats, cfg = problem(S=10)
    cfg = dict(cfg, batch_size=2, max_iterations=2)  # 5 batches per E-step
    with emkit.config_context(device="cuda", device_cache=cache):
        quiet = IVectorMachine(ubm, **cfg).fit(stats)
        _ticking(monkeypatch)
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = IVectorMachine(ubm, **cfg).fit(stats)
    lines = [r.getMessage() for r in caplog.records if "E-step" in r.getMessage()]
    assert lines == 2 * [
        "IVector E-step: 4 of 10 utterances (40.0%), 10 s/utterance, 40 s elapsed, about 1m00s "
        "left",
        "IVector E-step: 8 of 10 utterances (80.0%), 10 s/utterance, 1m20s elapsed, about 20 s "
        "left"]
    np.testing.assert_array_equal(machine.T, quiet.T)
    np.testing.assert_array_equal(machine.sigma, quiet.sigma)


def test_device_transform_logs_progress_and_a_summary(simulated, monkeypatch, caplog):
    ubm, stats, cfg = problem(S=10)
    machine = IVectorMachine(ubm, **dict(cfg, max_iterations=1)).fit(stats)
    monkeypatch.setattr(ivector_device, "MAX_DEVICE_BATCH", 2)  # 5 batches
    with emkit.config_context(device="cuda"):
        quiet = machine.transform(stats)
        _ticking(monkeypatch)
        with caplog.at_level(logging.INFO, logger="emkit"):
            ivectors = machine.transform(stats)
    assert [r.getMessage() for r in caplog.records] == [
        "i-vectors: 4 of 10 utterances (40.0%), 10 s/utterance, 40 s elapsed, about 1m00s left",
        "i-vectors: 8 of 10 utterances (80.0%), 10 s/utterance, 1m20s elapsed, about 20 s left",
        "i-vectors: 10 utterances in 1m40s (10 s/utterance)",
    ]
    np.testing.assert_array_equal(ivectors, quiet)
