"""Inside one EM iteration of ``IVectorMachine.fit`` (hours at C=2048, R=400, 10^5 utterances),
the E-step says how far it is (INFO, rate-limited, on a clock the test drives), on each of its
three routes through the batches; T and sigma are those of a run that logs nothing."""

import logging

import numpy as np
import pytest
from _ivector_batching import problem

import emkit.ivector._batching as batching
import emkit.ivector._training as training
from emkit import IVectorMachine, _progress

ESTEP_LINES = [
    "IVector E-step: 4 of 10 utterances (40.0%), 10 s/utterance, 40 s elapsed, about 1m00s left",
    "IVector E-step: 8 of 10 utterances (80.0%), 10 s/utterance, 1m20s elapsed, about 20 s left",
]


@pytest.mark.parametrize("route", ["centred, per-thread accumulators",
                                   "centred, one shared accumulator",
                                   "stacked in every E-step"])
def test_each_estep_logs_the_utterances_done_and_the_result_is_unchanged(route, monkeypatch,
                                                                         caplog):
    monkeypatch.setattr(training, "n_threads", lambda: 1)  # one thread: the batches in order
    monkeypatch.setattr(batching, "n_threads", lambda: 1)
    if "shared" in route:
        monkeypatch.setattr(batching, "_MAX_ACCUMULATOR_PER_THREAD", 0)
    if "stacked" in route:
        monkeypatch.setattr(batching, "_CENTRED_CACHE_BYTES", 0)
    ubm, stats, cfg = problem(S=10)
    cfg = dict(cfg, batch_size=2, max_iterations=2)  # 5 batches per E-step
    quiet = IVectorMachine(ubm, **cfg).fit(stats)
    ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock: one per batch
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        machine = IVectorMachine(ubm, **cfg).fit(stats)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == [
        "IVector E-step: 4 of 10 utterances (40.0%)", "IVector E-step: 8 of 10 utterances (80.0%)",
        "IVector: iteration 1/2",
        "IVector E-step: 4 of 10 utterances (40.0%)", "IVector E-step: 8 of 10 utterances (80.0%)",
        "IVector: iteration 2/2", "IVector: reached the maximum of 2 iterations (5m00s)"]
    assert lines[:2] == lines[3:5] == ESTEP_LINES
    np.testing.assert_array_equal(machine.T, quiet.T)
    np.testing.assert_array_equal(machine.sigma, quiet.sigma)
    assert machine.log_likelihood_ == quiet.log_likelihood_
