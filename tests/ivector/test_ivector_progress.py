"""Extracting the i-vectors of many utterances says how far it is (INFO, rate-limited, on a
clock the test drives) and how long it took; the i-vectors are the same."""

import logging

import numpy as np
from _ivector_batching import problem

import emkit.ivector._machine as machine_module
from emkit import IVectorMachine, _progress


def test_ivector_extraction_logs_progress_and_a_summary(monkeypatch, caplog):
    ubm, stats, cfg = problem(S=10)
    machine = IVectorMachine(ubm, **dict(cfg, max_iterations=1)).fit(stats)
    expected = machine.transform(stats)
    machine.set_params(batch_size=2)  # 5 batches, one thread
    monkeypatch.setattr(machine_module, "n_threads", lambda: 1)
    ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock: one per batch
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        ivectors = machine.transform(stats)
    assert [r.getMessage() for r in caplog.records] == [
        "i-vectors: 4 of 10 utterances (40.0%), 10 s/utterance, 40 s elapsed, about 1m00s left",
        "i-vectors: 8 of 10 utterances (80.0%), 10 s/utterance, 1m20s elapsed, about 20 s left",
        "i-vectors: 10 utterances in 1m40s (10 s/utterance)",
    ]
    np.testing.assert_array_equal(ivectors, expected)
