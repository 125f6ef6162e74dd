"""Inside one EM iteration of ISV and JFA training (hours with 10^5 sessions at C*D = 10^5),
the E-step over the sessions says how far it is (INFO, rate-limited, on a clock the test
drives); the trained subspaces are those of a run that logs nothing."""

import logging

import numpy as np
import pytest

from factor_analysis_cases import synthetic_problem

from emkit import _progress
from emkit.factor_analysis import ISVMachine, JFAMachine
from emkit.factor_analysis import _training as training

C, D, S = 4, 2, 12

ESTEP = ": 6 of 12 sessions (50.0%), 6.67 s/session, 40 s elapsed, about 40 s left"


def _problem():
    return (*synthetic_problem(1, S, C, D), np.arange(S) // 2)  # 6 speakers of 2 sessions


def _machine(kind, ubm):
    if kind == "ISV":
        return ISVMachine(2, em_iterations=1, ubm=ubm, random_state=0)
    return JFAMachine(2, 2, em_iterations=1, ubm=ubm, random_state=0)


@pytest.mark.parametrize("kind", ["ISV", "JFA"])
def test_the_session_estep_logs_the_sessions_done_and_training_is_unchanged(kind, monkeypatch,
                                                                            caplog):
    monkeypatch.setattr(training, "BLOCK_ELEMENTS", 3 * C * D)  # 4 blocks of 3 sessions
    monkeypatch.setattr(training, "SESSION_THREADS", 1)
    ubm, stats, labels = _problem()
    quiet = _machine(kind, ubm).fit(stats, labels)
    ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        machine = _machine(kind, ubm).fit(stats, labels)
    lines = [r.getMessage() for r in caplog.records if "E-step" in r.getMessage()]
    name = "ISV E-step" if kind == "ISV" else "JFA U E-step"
    assert lines == [name + ESTEP]  # one iteration (JFA: of U; the V phase passes over classes)
    for subspace in ("U", "D") + (("V",) if kind == "JFA" else ()):
        np.testing.assert_array_equal(getattr(machine, subspace), getattr(quiet, subspace))


def test_jfa_counts_the_classes_of_its_v_passes_and_the_sessions_of_its_final_x_pass(
        monkeypatch, caplog):
    monkeypatch.setattr(training, "BLOCK_ELEMENTS", 3 * C * D)  # 4 blocks of 3 classes, sessions
    monkeypatch.setattr(training, "SESSION_THREADS", 1)
    ubm, stats, _ = _problem()
    speakers = np.arange(S)  # 12 classes of 1 session
    quiet = _machine("JFA", ubm).fit(stats, speakers)
    ticks = iter(range(0, 10**6, 20))  # 20 s between two readings of the clock
    monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
    with caplog.at_level(logging.INFO, logger="emkit"):
        machine = _machine("JFA", ubm).fit(stats, speakers)
    half = " (50.0%), 6.67 s/{}, 40 s elapsed, about 40 s left"
    lines = [r.getMessage() for r in caplog.records if "training" not in r.getMessage()]
    assert lines == ["JFA V E-step: 6 of 12 classes" + half.format("class"),  # V's iteration
                     "JFA y pass: 6 of 12 classes" + half.format("class"),  # V's final y
                     "JFA U E-step: 6 of 12 sessions" + half.format("session"),
                     "JFA x pass: 6 of 12 sessions" + half.format("session")]  # U's final x
    for subspace in ("U", "V", "D"):
        np.testing.assert_array_equal(getattr(machine, subspace), getattr(quiet, subspace))


def test_isv_over_a_dask_bag_on_the_local_scheduler_logs_the_partitions_done(monkeypatch,
                                                                             caplog):
    import itertools

    import dask
    import dask.bag as db

    import emkit

    ubm, stats, labels = _problem()
    pairs = db.from_sequence(list(zip(labels, stats)), npartitions=4)
    with dask.config.set(scheduler="threads"), emkit.config_context(dask_cache="off"):
        quiet = _machine("ISV", ubm).fit(pairs)
        ticks = itertools.count(0, 20)  # (next() of a count is atomic: worker threads read it)
        monkeypatch.setattr(_progress, "monotonic", lambda: float(next(ticks)))
        with caplog.at_level(logging.INFO, logger="emkit"):
            machine = _machine("ISV", ubm).fit(pairs)
    lines = [r.getMessage() for r in caplog.records if "E-step" in r.getMessage()]
    assert lines == ["ISV E-step: 2 of 4 partitions (50.0%), 20 s/partition, 40 s elapsed, "
                     "about 40 s left"]
    for subspace in ("U", "D"):
        np.testing.assert_array_equal(getattr(machine, subspace), getattr(quiet, subspace))
